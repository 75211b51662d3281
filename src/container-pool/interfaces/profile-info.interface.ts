import type { PoolStats } from './container.interface';

/** One profile of the module, as ContainerPoolService.profiles() lists it. */
export interface ProfileInfo {
  name: string;
  /** The image as configured (a tag). */
  image: string;
  /** The engine's id of that image when last checked, or null before the first check. */
  imageId: string | null;
  /** How its programs reach their containers. */
  transport: 'exec' | 'runner';
  /** Whether it can serve now (an idle container, or room to create one). */
  ready: boolean;
  stats: PoolStats;
}
