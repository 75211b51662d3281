import { inflateSync } from 'node:zlib';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { CodeResult, Session } from '../../src/container-pool/interfaces/session.interface';
import {
  CHANNEL_FD,
  DATASCIENCE_IMAGE,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  startPool,
} from '../support/integration';

const MiB = 1024 * 1024;
const PRELOAD = ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot'];

/**
 * Decodes a PNG far enough to prove it is one of `width` x `height` pixels: the signature, the IHDR, and the
 * image data inflated to exactly one filter byte plus `width` pixels per row, for each row.
 */
function decodePng(png: Buffer): { width: number; height: number; channels: number } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8); // bit depth
      channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[data[9]];
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    at += 12 + length;
  }
  expect(inflateSync(Buffer.concat(idat)).length).toBe(height * (1 + width * channels));
  return { width, height, channels };
}

const kinds = (r: CodeResult) => r.outputs.map((o) => o.type);

/** Rich outputs of sessions (issue 18) in the data-science image, with its pre-imports (runner transport). */
describe('rich outputs: the data-science profile on a real engine', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;
  const open: Session[] = [];

  const session = async () => {
    const s = await pool.openSession();
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      image: DATASCIENCE_IMAGE,
      transport: 'runner',
      memoryBytes: 1024 * MiB,
      size: 1,
      maxContainers: 3,
      preloadModules: PRELOAD,
      maxOutputs: 8,
      execTimeoutMs: 60_000,
    }));
    await pool.initialize();
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('hands out containers with numpy, pandas and matplotlib imported, single-threaded, matplotlib set up by the runner', async () => {
    const s = await session();
    const r = await s.runCode(
      'import os, sys, threading\n' +
        '(all(m in sys.modules for m in ("numpy", "pandas", "matplotlib.pyplot")), threading.active_count(), ' +
        'len(os.listdir("/proc/self/task")), os.environ["MPLBACKEND"], os.environ["OPENBLAS_NUM_THREADS"], ' +
        'os.environ["OMP_NUM_THREADS"], os.access(os.environ["MPLCONFIGDIR"], os.W_OK))',
    );
    expect(r).toMatchObject({ exitCode: 0, stderr: '', outputsTruncated: false });
    expect(r.outputs).toEqual([
      { type: 'result', data: { 'text/plain': "(True, 1, 1, 'Agg', '1', '1', True)" } },
    ]);
    // The first import of the three in the session is a lookup; matplotlib neither warns nor rebuilds its fonts.
    const first = await s.runCode(
      'import numpy as np, pandas as pd, matplotlib\nimport matplotlib.pyplot as plt',
    );
    expect(first).toMatchObject({ exitCode: 0, stdout: '', stderr: '', outputs: [] });
  });

  it('returns the value of a trailing expression as `result`, bound to `_`; a `;` or a statement shows nothing', async () => {
    const s = await session();
    const r = await s.runCode('x = 6\nx * 7');
    expect(r).toMatchObject({ exitCode: 0, stdout: '', executionCount: 1 });
    expect(r.outputs).toEqual([{ type: 'result', data: { 'text/plain': '42' } }]);
    const quiet = await s.runCode('print(_)\nx * 7;');
    expect(quiet).toMatchObject({ stdout: '42\n', outputs: [], outputsTruncated: false });
    expect((await s.runCode('y = x')).outputs).toEqual([]);
  });

  it('display() of several objects, in order, each in its richest forms (as IPython renders them)', async () => {
    const s = await session();
    const r = await s.runCode(
      [
        'class Card:',
        '    def _repr_html_(self):',
        '        return "<b>card</b>"',
        '    def _repr_svg_(self):',
        '        return "<svg/>"',
        '    def _repr_json_(self):',
        '        return {"k": [1, 2]}',
        '    def __repr__(self):',
        '        return "Card()"',
        'from IPython.display import Markdown',
        'display(1, "two", Card(), Markdown("# t"))',
      ].join('\n'),
    );
    expect(r.exitCode).toBe(0);
    expect(r.outputs).toEqual([
      { type: 'display', data: { 'text/plain': '1' } },
      { type: 'display', data: { 'text/plain': "'two'" } },
      {
        type: 'display',
        data: {
          'text/plain': 'Card()',
          'text/html': '<b>card</b>',
          'image/svg+xml': '<svg/>',
          'application/json': { k: [1, 2] },
        },
      },
      {
        type: 'display',
        data: { 'text/plain': '<IPython.core.display.Markdown object>', 'text/markdown': '# t' },
      },
    ]);
  });

  it("a DataFrame comes back as the notebook's HTML table and its text form", async () => {
    const s = await session();
    const r = await s.runCode(
      'import pandas as pd\ndf = pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 19.0]})\ndf',
    );
    expect(r.exitCode).toBe(0);
    expect(kinds(r)).toEqual(['result']);
    const data = r.outputs[0].data;
    expect(data['text/html']).toMatch(/<table[^>]*class="dataframe"/);
    expect(data['text/html']).toContain('<td>Oslo</td>');
    expect(data['text/plain'].split(/\s+/).filter(Boolean)).toEqual([
      'city',
      'temp',
      '0',
      'Oslo',
      '3.5',
      '1',
      'Lima',
      '19.0',
    ]);
  });

  it("the README's example: the trailing DataFrame is the result, the figure its plot left open comes after it", async () => {
    const s = await session();
    const r = await s.runCode(
      'import pandas as pd, matplotlib.pyplot as plt\n' +
        'df = pd.DataFrame({"x": [1, 2, 3], "y": [1, 4, 9]})\n' +
        'df.plot(x="x", y="y")\n' +
        'df',
      { maxOutputs: 8 },
    );
    expect(kinds(r)).toEqual(['result', 'display']);
    expect(r.outputs[0].data['text/html']).toContain('<table');
    expect(r.outputs[1].data).toMatchObject({ 'text/plain': '<Figure size 640x480 with 1 Axes>' });
    expect(r.outputs[1].data['image/png']).toBeInstanceOf(Buffer);
  });

  it('a matplotlib figure shown with plt.show() is a PNG that decodes to figsize x dpi pixels; then it is closed', async () => {
    const s = await session();
    const r = await s.runCode(
      'import matplotlib.pyplot as plt\n' +
        'fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n' +
        'ax.plot([0, 1, 2], [0, 1, 4])\nplt.show()\nprint("shown")',
    );
    expect(r).toMatchObject({
      exitCode: 0,
      stdout: 'shown\n',
      stderr: '',
      outputsTruncated: false,
    });
    expect(kinds(r)).toEqual(['display']);
    const png = r.outputs[0].data['image/png'];
    expect(Buffer.isBuffer(png)).toBe(true);
    expect(decodePng(png!)).toMatchObject({ width: 400, height: 300 });
    expect(r.outputs[0].data['text/plain']).toBe('<Figure size 400x300 with 1 Axes>');
    expect((await s.runCode('plt.get_fignums()')).outputs).toEqual([
      { type: 'result', data: { 'text/plain': '[]' } },
    ]);
  });

  it('a figure never shown but left open comes at the end of the call (also after an exception), then is closed', async () => {
    const s = await session();
    const r = await s.runCode(
      'import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 1), dpi=50)\nplt.bar(["a", "b"], [1, 2]);',
    );
    expect(r.exitCode).toBe(0);
    expect(kinds(r)).toEqual(['display']);
    expect(decodePng(r.outputs[0].data['image/png']!)).toMatchObject({ width: 100, height: 50 });
    const failed = await s.runCode('plt.figure(figsize=(1, 1), dpi=30)\nplt.plot([1])\n1 / 0');
    expect(failed.error).toMatchObject({ name: 'ZeroDivisionError' });
    expect(kinds(failed)).toEqual(['display']);
    expect(decodePng(failed.outputs[0].data['image/png']!)).toMatchObject({
      width: 30,
      height: 30,
    });
    expect((await s.runCode('len(plt.get_fignums())')).outputs[0].data['text/plain']).toBe('0');
  });

  it('an object whose _repr_html_ raises still comes back in its text form; the failure is one line on stderr', async () => {
    const s = await session();
    const r = await s.runCode(
      'class Broken:\n    def _repr_html_(self):\n        raise ValueError("no html today")\n' +
        '    def __repr__(self):\n        return "Broken()"\nBroken()',
    );
    expect(r).toMatchObject({ exitCode: 0, outputsTruncated: false });
    expect(r.error).toBeUndefined();
    expect(r.outputs).toEqual([{ type: 'result', data: { 'text/plain': 'Broken()' } }]);
    expect(r.stderr).toBe('_repr_html_ of Broken failed: ValueError: no html today\n');
  });

  it('caps: maxOutputs (the profile, and lower per call) and maxOutputBytes; beyond them outputsTruncated', async () => {
    const s = await session();
    const many = await s.runCode('for i in range(20):\n    display(i)');
    expect(many.outputs.map((o) => o.data['text/plain'])).toEqual(
      ['0', '1', '2', '3', '4', '5', '6', '7'], // the profile's maxOutputs: 8
    );
    expect(many.outputsTruncated).toBe(true);
    const fewer = await s.runCode('for i in range(20):\n    display(i)', { maxOutputs: 3 });
    expect(fewer.outputs).toHaveLength(3);
    expect(fewer.outputsTruncated).toBe(true);
    // 3 x 1,002 bytes of text/plain against 2,500 bytes: two fit, the third does not (nor anything after it).
    const bytes = await s.runCode('display("a" * 1000, "b" * 1000, "c" * 1000, 1)', {
      maxOutputBytes: 2500,
    });
    expect(bytes.outputs.map((o) => o.data['text/plain'].length)).toEqual([1002, 1002]);
    expect(bytes.outputsTruncated).toBe(true);
    // A figure larger than the cap is dropped whole; the call still succeeds and the figure is closed.
    const big = await s.runCode(
      'import matplotlib.pyplot as plt\nplt.figure(figsize=(8, 8), dpi=100);',
      {
        maxOutputBytes: 1000,
      },
    );
    expect(big).toMatchObject({ exitCode: 0, outputs: [], outputsTruncated: true });
    expect((await s.runCode('len(plt.get_fignums())')).outputs[0].data['text/plain']).toBe('0');
    const fits = await s.runCode('"ok"');
    expect(fits).toMatchObject({ outputs: [{ type: 'result' }], outputsTruncated: false });
  });

  it('the host holds the caps whatever the code sends on its channel; a malformed output restarts the interpreter', async () => {
    const s = await session();
    // Forged but well-formed outputs are the code's own word: they count against the caps like any other.
    const forged = await s.runCode(
      CHANNEL_FD +
        'import json, os\n' +
        'b = json.dumps({"t": "out", "type": "display", "data": {"text/plain": "forged", ' +
        '"image/png": "bm90IGEgcG5n"}}).encode()\n' +
        'for i in range(50):\n    os.write(SF, len(b).to_bytes(4, "big") + b)',
    );
    expect(forged.error).toBeUndefined();
    expect(forged).toMatchObject({ exitCode: 0, outputsTruncated: true, stateLost: false });
    expect(forged.outputs).toHaveLength(8);
    expect(forged.outputs[0].data['image/png']).toEqual(Buffer.from('not a png'));
    await s.runCode('kept = 1');
    const bad = await s.runCode(
      CHANNEL_FD +
        'import os, time\nb = b\'{"t": "out", "type": "display", "data": {"text/plain": 5}}\'\n' +
        'os.write(SF, len(b).to_bytes(4, "big") + b)\ntime.sleep(5)',
    );
    expect(bad.exitCode).toBe(137);
    expect(bad.stateLost).toBe(true);
    const after = await s.runCode('"kept" in dir()');
    expect(after).toMatchObject({ exitCode: 0, stateLost: false, executionCount: 1 });
    expect(after.outputs[0].data['text/plain']).toBe('False');
    // JSON that Python parses but JSON.parse does not (NaN), and JSON too deep for the runner's parser: the same
    // (not a protocol violation that costs the container, nor the runner's death).
    for (const value of ['"NaN"', '"[" * 100000 + "]" * 100000']) {
      const odd = await s.runCode(
        CHANNEL_FD +
          'import os, time\nb = (\'{"t": "out", "type": "display", "data": {"text/plain": "x", ' +
          `"application/json": ' + ${value} + "}}").encode()\n` +
          'os.write(SF, len(b).to_bytes(4, "big") + b)\ntime.sleep(5)',
      );
      expect(odd).toMatchObject({ exitCode: 137, stateLost: true, outputs: [] });
      expect((await s.runCode('6 * 7')).outputs[0].data['text/plain']).toBe('42');
    }
    expect(s.info().state).toBe('open');
  });
});

/** The Python sandbox image (no IPython, no matplotlib, no pre-imports): outputs come the same way. */
describe('rich outputs: the plain Python image on a real engine', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      image: SANDBOX_IMAGE,
      transport: 'runner',
      size: 1,
      maxContainers: 2,
    }));
    await pool.initialize();
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it("results, display() and IPython.display work without IPython; the environment is only the caller's", async () => {
    const s = await pool.openSession();
    try {
      const r = await s.runCode(
        'import os, sys\nfrom IPython.display import display, HTML\ndisplay(HTML("<i>x</i>"))\n' +
          'sorted(k for k in os.environ if k != "LC_CTYPE"), "matplotlib" in sys.modules',
      );
      expect(r).toMatchObject({ exitCode: 0, stderr: '', outputsTruncated: false });
      expect(r.outputs).toEqual([
        {
          type: 'display',
          data: { 'text/plain': '<IPython.core.display.HTML object>', 'text/html': '<i>x</i>' },
        },
        { type: 'result', data: { 'text/plain': "(['HOME', 'PATH'], False)" } },
      ]);
      const run = await s.run({ cmd: ['sh', '-c', 'echo ${MPLBACKEND:-unset}'] });
      expect(run.stdout).toBe('unset\n');
      expect('outputs' in run).toBe(false);
    } finally {
      await s.close();
    }
  });
});
