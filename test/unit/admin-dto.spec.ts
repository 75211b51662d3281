import { ArgumentMetadata, BadRequestException } from '@nestjs/common';
import { containerPoolValidationPipe } from '../../src/container-pool/http/admin-routes';
import { ResizeDto } from '../../src/container-pool/http/dto/resize.dto';
import { RunRequestDto } from '../../src/container-pool/http/dto/run-request.dto';
import {
  containerRefKind,
  ContainerRefPipe,
} from '../../src/container-pool/http/pipes/container-ref.pipe';
import { JsonObjectBodyPipe } from '../../src/container-pool/http/pipes/json-object-body.pipe';

const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
  type: 'body',
  metatype,
});

async function messages(value: unknown, metatype: ArgumentMetadata['metatype']): Promise<string[]> {
  try {
    await containerPoolValidationPipe().transform(value, body(metatype));
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestException);
    const res = (err as BadRequestException).getResponse() as {
      code: string;
      message: string;
      details: { field: string; message: string }[];
    };
    // One shape: the first problem as the message, every problem in details.
    expect(res.code).toBe('INVALID_REQUEST');
    expect(res.message).toBe(res.details[0].message);
    return res.details.map((d) => d.message);
  }
  return [];
}

const ENV_MESSAGE =
  'env must be an object mapping variable names ([A-Za-z_][A-Za-z0-9_]*) to string values';

describe('RunRequestDto', () => {
  it('accepts run() requests and returns a DTO instance', async () => {
    const out = await containerPoolValidationPipe().transform(
      {
        cmd: ['echo', 'hi'],
        env: { A_1: 'x' },
        stdin: 's',
        workdir: '/w',
        timeoutMs: 5,
        maxOutputBytes: 9,
      },
      body(RunRequestDto),
    );
    expect(out).toBeInstanceOf(RunRequestDto);
    expect(await messages({ code: 'print(1)', language: 'python' }, RunRequestDto)).toEqual([]);
  });

  it.each([
    [{ cmd: 'ls' }, 'cmd must be an array'],
    [{ cmd: ['ls', 2] }, 'each value in cmd must be a string'],
    [{ code: null }, 'code must be a string'],
    [{ code: 'x', language: 'ruby' }, 'language must be one of the following values: python'],
    [{ cmd: ['ls'], timeoutMs: '5' }, 'timeoutMs must be an integer number'],
    [{ cmd: ['ls'], timeoutMs: 0 }, 'timeoutMs must not be less than 1'],
    [{ cmd: ['ls'], maxOutputBytes: -5 }, 'maxOutputBytes must not be less than 1'],
    [{ cmd: ['ls'], env: ['A=1'] }, ENV_MESSAGE],
    [{ cmd: ['ls'], env: { A: 'x\0' } }, ENV_MESSAGE],
    [{ cmd: ['ls'], env: { '1A': 'x' } }, ENV_MESSAGE],
    [{ cmd: ['ls'], workdir: 'tmp' }, 'workdir must be an absolute path'],
    [{ cmd: ['ls'], signal: {} }, 'property signal should not exist'],
  ])('%j -> "%s"', async (value, message) => {
    expect(await messages(value, RunRequestDto)).toContain(message);
  });
});

describe('ResizeDto', () => {
  it.each([
    [{ size: -1 }, 'size must not be less than 0'],
    [{ size: 1.5 }, 'size must be an integer number'],
    [{ maxContainers: 0 }, 'maxContainers must not be less than 1'],
    [{ maxContainers: null }, 'maxContainers must be an integer number'],
    [{ size: 1, extra: true }, 'property extra should not exist'],
  ])('%j -> "%s"', async (value, message) => {
    expect(await messages(value, ResizeDto)).toContain(message);
  });
});

describe('JsonObjectBodyPipe', () => {
  const pipe = new JsonObjectBodyPipe();
  it('wants one JSON object as body and ignores other parameters', () => {
    expect(pipe.transform({ a: 1 }, body(Object))).toEqual({ a: 1 });
    expect(pipe.transform('x', { type: 'param' })).toBe('x');
    expect(() => pipe.transform(undefined, body(Object))).toThrow(/body is required/);
    expect(() => pipe.transform([1], body(Object))).toThrow(/must be a JSON object/);
    expect(() => pipe.transform('text', body(Object))).toThrow(/must be a JSON object/);
  });
});

describe('container references', () => {
  const id = 'a1'.repeat(32);
  it.each([
    [id, 'id'],
    [id.slice(0, 12), 'prefix'],
    [id.slice(0, 63), 'prefix'],
    ['cpool-default-1a2b3c4d-1', 'name'],
    ['My_container.1', 'name'],
    [id.slice(0, 11), null],
    [`${id}a`, null],
    ['-x', null],
    ['a b', null],
    ['..', null],
    ['', null],
  ])('%s is %s', (ref, kind) => {
    expect(containerRefKind(ref)).toBe(kind);
    if (kind === null) expect(() => new ContainerRefPipe().transform(ref)).toThrow(/^id must be/);
    else expect(new ContainerRefPipe().transform(ref)).toBe(ref);
  });
});
