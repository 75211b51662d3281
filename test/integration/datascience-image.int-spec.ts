import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  DATASCIENCE_IMAGE,
  DATASCIENCE_MPL_CACHE_DIR,
  expectNoContainersLeft,
  startPool,
} from '../support/integration';

const MiB = 1024 * 1024;

/**
 * Until the runner seeds it itself (#18), what it will do: MPLCONFIGDIR is a writable directory (matplotlib uses
 * a cache dir only when it can write to it) holding a copy of the image's baked font cache, made before
 * matplotlib is imported.
 */
const SEED_FONT_CACHE = `
import glob, os, shutil
os.makedirs(os.environ["MPLCONFIGDIR"], exist_ok=True)
for f in glob.glob(${JSON.stringify(DATASCIENCE_MPL_CACHE_DIR)} + "/fontlist-v*.json"):
    shutil.copy(f, os.environ["MPLCONFIGDIR"])
`;

/** Records matplotlib's font manager log, imports the three, plots a DataFrame into the work dir. */
const PLOT = `
import json, logging, os, struct
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
log = logging.getLogger("matplotlib.font_manager")
log.setLevel(logging.DEBUG)
log.addHandler(Keep())

import numpy as np, pandas as pd, matplotlib
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
ax = df.plot(x="x", y="y", figsize=(4, 3))
ax.get_figure().savefig("plot.png", dpi=50)
with open("plot.png", "rb") as f:
    head = f.read(24)
width, height = struct.unpack(">II", head[16:24])
print(json.dumps({
    "size": os.path.getsize("plot.png"),
    "png": head[:8] == b"\\x89PNG\\r\\n\\x1a\\n" and head[12:16] == b"IHDR",
    "width": width, "height": height,
    "cwd": os.getcwd(),
    "backend": matplotlib.get_backend(),
    "cachedir": matplotlib.get_cachedir(),
    "sum": int(df["y"].sum()),
    "loaded": any(m.startswith("Using fontManager instance from") for m in records),
    "generated": any("generated new fontManager" in m for m in records),
    "cachefiles": sorted(os.listdir(matplotlib.get_cachedir())),
}))
`;

/** The offline data-science image (scripts/build-sandbox-image.sh datascience) under the module's hardening. */
describe('data-science image on a real engine', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      image: DATASCIENCE_IMAGE,
      transport: 'runner',
      memoryBytes: 512 * MiB,
      size: 1,
      maxContainers: 2,
    }));
    await pool.initialize();
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('imports numpy, pandas and matplotlib, plots a DataFrame to a PNG in the work dir, with the baked font cache', async () => {
    const r = await pool.run({
      code: SEED_FONT_CACHE + PLOT,
      env: { MPLBACKEND: 'Agg', MPLCONFIGDIR: '/tmp/matplotlib' },
      timeoutMs: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, transport: 'runner' });
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      png: true,
      width: 200,
      height: 150,
      cwd: '/workspace',
      backend: 'agg',
      cachedir: '/tmp/matplotlib',
      sum: 285,
      // The baked cache was loaded, not rebuilt (and not rewritten: the directory holds only the copy).
      loaded: true,
      generated: false,
      cachefiles: ['fontlist-v330.json'],
    });
    expect(out.size).toBeGreaterThan(1000);
    expect(r.stderr).not.toMatch(/building the font cache|temporary config\/cache directory/);
  });

  it('the baked cache directory itself is read-only: as MPLCONFIGDIR, matplotlib falls back to a temporary one', async () => {
    // Why the runner must copy the cache into a writable MPLCONFIGDIR rather than point at the image's copy.
    const r = await pool.run({
      code: PLOT,
      env: { MPLBACKEND: 'Agg', MPLCONFIGDIR: DATASCIENCE_MPL_CACHE_DIR },
      timeoutMs: 60_000,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/Matplotlib created a temporary config\/cache directory/);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ png: true, loaded: false, generated: true });
    expect(out.cachedir).toMatch(/^\/tmp\/matplotlib-/);
  });
});
