import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { setupContainerPoolDocs } from './container-pool/http/openapi/document';

function listenAddress(): { host: string; port: number } {
  const host = process.env.HOST?.trim() || '127.0.0.1';
  const rawPort = process.env.PORT?.trim() || '3000';
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port < 0 || port > 65535) {
    throw new Error(`Invalid PORT: must be an integer 0-65535, got "${rawPort}"`);
  }
  return { host, port };
}

async function bootstrap(): Promise<void> {
  const { host, port } = listenAddress();
  const logger = new Logger('Main');
  // No app-wide body parser: the pool's routes parse their JSON themselves, with POOL_MAX_BODY_BYTES.
  const app = await NestFactory.create(AppModule, { bodyParser: false });
  app.enableShutdownHooks();
  (app.getHttpAdapter().getInstance() as { disable?: (setting: string) => void }).disable?.(
    'x-powered-by',
  );
  const docs = setupContainerPoolDocs(app, 'docs');
  await app.listen(port, host);
  logger.log(`container-pool service listening on http://${host}:${port}`);
  if (docs) logger.log(`API docs at http://${host}:${port}/docs (JSON at /docs-json)`);
  else logger.warn('@nestjs/swagger is not installed: /docs is not served');
}

bootstrap().catch((err: unknown) => {
  new Logger('Main').error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
