import { Inject } from '@nestjs/common';
import { getContainerPoolToken } from './container-pool.constants';

/**
 * Injects one profile's ContainerPool (`run`, `acquire`, `release`, `withContainer`, `replenish`, `resize`,
 * `drain`, `resume`, `stats()`...): `constructor(@InjectContainerPool('shell') private readonly shell:
 * ContainerPool)`. Without a name: the default profile. forRoot() provides a token for every profile it is
 * given (in code or from the environment); forRootAsync() for the names listed in its `profileNames` extra.
 */
export const InjectContainerPool = (profile?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getContainerPoolToken(profile));
