import { IsInt, Max, Min } from 'class-validator';
import { ApiPropertyOptional } from '../openapi/swagger';
import { IsOptionalDefined } from './validation';

/** Body of PUT /size: at least one of the two. */
export class ResizeDto {
  @ApiPropertyOptional({
    minimum: 0,
    description: 'Idle containers kept warm; at most maxContainers.',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(0)
  @Max(100_000)
  size?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'Cap on all containers of the pool.' })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  @Max(100_000)
  maxContainers?: number;
}
