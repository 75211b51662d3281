// The runnable service (`npm run serve`, `npm run start:prod`); shipped as `container-pool serve` (src/cli).
import { catchEarlySignals } from './cli/early-signals';

// Before Nest and the module load: a signal during the boot stops the service cleanly (ServiceLifecycle).
catchEarlySignals();
void import('./cli/serve').then(({ runService }) => runService());
