import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

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
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(port, host);
  new Logger('Main').log(`container-pool service listening on http://${host}:${port}`);
}

bootstrap().catch((err: unknown) => {
  new Logger('Main').error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
