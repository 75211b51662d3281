// The runnable service (`npm run serve`, `npm run start:prod`); shipped as `container-pool serve` (src/cli).
import { runService } from './cli/serve';

runService();
