import { Injectable } from '@nestjs/common';
import { ContainerPoolService, type ExecResult } from 'container-pool';

/** A provider of the host, injected with the module's service by class. */
@Injectable()
export class ToolRunner {
  constructor(private readonly pool: ContainerPoolService) {}

  python(code: string): Promise<ExecResult> {
    return this.pool.run({ code, timeoutMs: 10_000 });
  }

  severalSteps(): Promise<string> {
    return this.pool.withContainer(async (c) => {
      await c.execute(['sh', '-c', 'echo 41 > n']);
      return (await c.execute(['sh', '-c', 'echo $(( $(cat n) + 1 ))'])).stdout;
    });
  }
}
