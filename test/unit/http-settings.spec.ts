/*
 * The HTTP settings of the module (forRoot's `http` and its extras, ContainerPoolHttpModule.register): invalid
 * ones fail the start with one InvalidPoolConfigError naming each setting as the host wrote it.
 */
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';
import {
  ContainerPoolHttpModule,
  httpSettingsOf,
} from '../../src/container-pool/http/container-pool-http';

/** The problems of the InvalidPoolConfigError that `fn` throws. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    expect((err as InvalidPoolConfigError).code).toBe('INVALID_CONFIG');
    return (err as InvalidPoolConfigError).problems;
  }
  throw new Error('expected an InvalidPoolConfigError');
}

describe('HTTP settings', () => {
  it('an invalid prefix or path of the http object is named http.<setting>, every problem at once', () => {
    const problems = problemsOf(() =>
      ContainerPoolModule.forRoot({
        http: { prefix: 'admin pool', healthPath: '', metricsPath: 5 as unknown as string },
      }),
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^http\.prefix must be a URL path .* got "admin pool"$/);
    expect(problems[1]).toMatch(/^http\.healthPath must be a URL path .* got ""$/);
    expect(problems[2]).toMatch(/^http\.metricsPath must be a URL path .* got 5$/);
  });

  it('a forRoot extra is named as the extra; forRootAsync checks the same', () => {
    expect(
      problemsOf(() => ContainerPoolModule.forRoot({ http: true, adminPrefix: 'admin/../x' })),
    ).toEqual([expect.stringMatching(/^adminPrefix must be a URL path .*not "\." or "\.\."/)]);
    expect(
      problemsOf(() =>
        ContainerPoolModule.forRootAsync({
          useFactory: () => ({}),
          http: { metricsPath: 'metrics?x=1' },
        }),
      ),
    ).toEqual([expect.stringMatching(/^http\.metricsPath must be/)]);
  });

  it('http of another type, unknown keys, adminApi not a boolean, prefix and adminPrefix both', () => {
    expect(
      problemsOf(() => ContainerPoolModule.forRoot({ http: 'yes' as unknown as boolean })),
    ).toEqual([expect.stringMatching(/^http must be true, false or \{ prefix, .*got "yes"/)]);
    const problems = problemsOf(() =>
      ContainerPoolModule.forRoot({
        http: {
          prefx: 'ops',
          adminApi: 'no',
          prefix: 'a',
          adminPrefix: 'b',
        } as unknown as boolean,
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^unknown HTTP option http\.prefx: the options are prefix, /),
      'http.adminApi must be a boolean, got "no"',
      'http.prefix and http.adminPrefix name the same setting: give one of them',
    ]);
  });

  it('ContainerPoolHttpModule.register names its own options', () => {
    expect(problemsOf(() => ContainerPoolHttpModule.register({ prefix: 'x%2fy' }))).toEqual([
      expect.stringMatching(
        /^ContainerPoolHttpModule\.register\(\{ prefix \}\) must be a URL path/,
      ),
    ]);
  });

  it('valid paths: slashes around are dropped, false turns a route off, no http is no route', () => {
    const s = httpSettingsOf({ prefix: '/ops/pool/', healthPath: false, metricsPath: 'm' });
    expect(s).toMatchObject({ adminPrefix: 'ops/pool', healthPath: null, metricsPath: 'm' });
    expect(s.controllers).toHaveLength(3);
    expect(ContainerPoolModule.forRoot({ adminPrefix: 'not a path' }).controllers).toEqual([]);
  });
});
