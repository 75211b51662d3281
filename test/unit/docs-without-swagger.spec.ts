describe('setupContainerPoolDocs without @nestjs/swagger (an optional peer)', () => {
  it('serves nothing and says so in the log, naming the package to install', () => {
    jest.isolateModules(() => {
      jest.doMock('@nestjs/swagger', () => {
        throw new Error("Cannot find module '@nestjs/swagger'");
      });
      // The isolated registry has its own @nestjs/common: spy on that Logger.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Logger } = require('@nestjs/common') as typeof import('@nestjs/common');
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      type Docs = typeof import('../../src/container-pool/http/openapi/document');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const docs = require('../../src/container-pool/http/openapi/document') as Docs;
      expect(docs.setupContainerPoolDocs({ get: () => undefined } as never, 'docs')).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/npm install @nestjs\/swagger/));
      warn.mockRestore();
    });
    jest.dontMock('@nestjs/swagger');
  });
});
