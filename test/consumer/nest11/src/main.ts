/*
 * A Nest 11 CommonJS host app of the packed container-pool, booted by test/integration/consumer.int-spec.ts:
 * runs code through the module on the real engine, calls its routes through the host's own global
 * ValidationPipe, closes, and prints one line `RESULT <json>` for the test to check.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Module, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ContainerPoolModule,
  setupContainerPoolDocs,
  type Container,
  type ContainerPoolModuleOptions,
} from 'container-pool';
import { ToolRunner } from './tools';

// The published types are real: with dockerode's types missing these were `any`.
type IsAny<T> = 0 extends 1 & T ? true : false;
const typed: [
  IsAny<Container['dockerContainer']>,
  IsAny<NonNullable<ContainerPoolModuleOptions['docker']>>,
] = [false, false];
if (typed.length > 2) {
  // @ts-expect-error size is a number
  ContainerPoolModule.forRoot({ size: 'four' });
}

const token = process.env.POOL_ADMIN_TOKEN ?? '';

@Module({
  imports: [
    ContainerPoolModule.forRoot({
      image: 'container-pool-sandbox:bookworm',
      pullPolicy: 'never',
      size: 1,
      name: process.env.POOL_NAME ?? 'test-consumer-nest11',
      adminToken: token,
      // A library host opts in to the module's routes.
      http: true,
    }),
  ],
  providers: [ToolRunner],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { bodyParser: false, logger: ['error', 'warn'] });
  // The host's own global pipe also validates the module's DTOs: one copy of class-validator for both.
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  const docs = setupContainerPoolDocs(app, 'docs');
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const tools = app.get(ToolRunner);
  const run = await tools.python('print(6*7)');
  const steps = await tools.severalSteps();
  const post = (body: unknown) =>
    fetch(`${base}/admin/pool/executions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const valid = await post({ code: 'print(6*7)' });
  const invalid = await post({ code: 'print(1)', timeoutMs: 'soon' });
  const unknown = await post({ code: 'print(1)', shell: true });
  const ready = await fetch(`${base}/health/ready`);
  const result = {
    nest: (
      JSON.parse(readFileSync('node_modules/@nestjs/core/package.json', 'utf8')) as {
        version: string;
      }
    ).version,
    typed,
    run: { exitCode: run.exitCode, stdout: run.stdout },
    steps,
    valid: { status: valid.status, body: (await valid.json()) as unknown },
    invalid: { status: invalid.status, body: (await invalid.json()) as unknown },
    unknown: { status: unknown.status, body: (await unknown.json()) as unknown },
    ready: ready.status,
    docs,
  };
  await app.close();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`consumer app failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
