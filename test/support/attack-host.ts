/**
 * A pool owner for the lifeline fault suite (test/integration/faults/lifeline.int-spec.ts): a separate Node
 * process hosting one pool instance per entry of the plan in ATTACK_HOST_PLAN (JSON, see AttackPlan). For each
 * attack of a pool it acquires a container and runs the attack in it with `container.execute()`, and it keeps
 * every lease (it never releases). It prints one `ATTACK <json>` line per attack (AttackOutcome), then
 * `READY <instance id>,<instance id>...` (in the order of the plan's pools), and stays up until signalled:
 * SIGTERM is a graceful shutdown (which removes its containers), SIGKILL and SIGSTOP are the faults under test.
 *
 * Run with: node -r ts-node/register/transpile-only test/support/attack-host.ts (startPoolHost does).
 */
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ContainerPoolModule,
  ContainerPoolService,
  type Container,
  type ContainerPoolModuleOptions,
} from '../../src';

export interface PlannedAttack {
  /** Name of the attack (also its process marker `cpatk-<attack>`). */
  attack: string;
  cmd: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface PlannedPool {
  name: string;
  image: string;
  options: ContainerPoolModuleOptions;
  attacks: PlannedAttack[];
}

export interface AttackPlan {
  pools: PlannedPool[];
}

export interface AttackOutcome {
  pool: string;
  attack: string;
  containerId: string;
  containerName: string;
  createdAt: string;
  exitCode?: number | null;
  timedOut?: boolean;
  stdout?: string;
  stderr?: string;
  durationMs?: number;
  /** The acquire or the execution rejected (an infrastructure error: the test fails on it). */
  error?: string;
}

async function startPool(p: PlannedPool): Promise<INestApplicationContext> {
  @Module({
    imports: [
      ContainerPoolModule.forRoot({
        pullPolicy: 'never',
        ...p.options,
        name: p.name,
        image: p.image,
      }),
    ],
  })
  class AttackHostModule {}
  const app = await NestFactory.createApplicationContext(AttackHostModule, {
    logger: ['error'],
  });
  await app.get(ContainerPoolService).initialize();
  return app;
}

async function attack(
  pool: ContainerPoolService,
  name: string,
  a: PlannedAttack,
  leases: Container[],
): Promise<AttackOutcome> {
  let c: Container | undefined;
  try {
    c = await pool.acquire();
    leases.push(c);
    const r = await c.execute(a.cmd, { env: a.env, timeoutMs: a.timeoutMs });
    return {
      pool: name,
      attack: a.attack,
      containerId: c.id,
      containerName: c.name,
      createdAt: c.createdAt.toISOString(),
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      stdout: r.stdout,
      stderr: r.stderr.slice(0, 2000),
      durationMs: Math.round(r.durationMs),
    };
  } catch (err) {
    return {
      pool: name,
      attack: a.attack,
      containerId: c?.id ?? '',
      containerName: c?.name ?? '',
      createdAt: c?.createdAt.toISOString() ?? '',
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    };
  }
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env.ATTACK_HOST_PLAN ?? '{"pools":[]}') as AttackPlan;
  const apps: INestApplicationContext[] = [];
  const closeAll = () => {
    void Promise.allSettled(apps.map((a) => a.close())).then(() => process.exit(0));
  };
  process.once('SIGTERM', closeAll);
  process.once('SIGINT', closeAll);
  for (const p of plan.pools) apps.push(await startPool(p));
  const pools = apps.map((a) => a.get(ContainerPoolService));
  // The leases are never released: the containers stay leased until the owner's fate decides.
  const leases: Container[] = [];
  const outcomes = await Promise.all(
    plan.pools.flatMap((p, i) => p.attacks.map((a) => attack(pools[i], p.name, a, leases))),
  );
  for (const o of outcomes) process.stdout.write(`ATTACK ${JSON.stringify(o)}\n`);
  process.stdout.write(`READY ${pools.map((p) => p.instanceId).join(',')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`attack-host failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
