// Scheduling (docs/scheduling.md): one-shot jobs (`nimbus.schedule`) and crons (`nimbus.crons`).
// Results are the server's snake_case wire shapes.

import { NimbusClientError } from "./errors.js";
import type { Transport } from "./transport.js";
import type { Cron, CronRun, CronSchedule, JobResult, JobStatus, JobTarget, ScheduledJob, TenantScoped } from "./types.js";

/** When a job runs: after a delay, or at a time (converted to a delay from now, never negative). */
export type JobTiming = { runAfterMs: number; runAt?: never } | { runAt: Date | number; runAfterMs?: never };

/** `nimbus.schedule`: durable one-shot jobs. */
export class Schedule {
  constructor(private readonly transport: Transport) {}

  /**
   * Schedules `mutation` to run once, `runAfterMs` from now (0 to 365 days) or at `runAt`.
   * Resolves to the job's id.
   */
  async create(args: TenantScoped & JobTiming & { mutation: JobTarget }): Promise<{ job_id: string }> {
    const path = this.transport.tenantPath(args.tenantId, "schedule");
    let runAfterMs: number;
    if (args.runAfterMs !== undefined) {
      runAfterMs = args.runAfterMs;
    } else if (args.runAt !== undefined) {
      const at = args.runAt instanceof Date ? args.runAt.getTime() : args.runAt;
      if (!Number.isFinite(at)) throw new NimbusClientError("`runAt` is not a valid time", { field: "runAt" });
      runAfterMs = Math.max(0, Math.ceil(at - Date.now()));
    } else {
      throw new NimbusClientError("schedule.create needs `runAfterMs` or `runAt`", { field: "runAfterMs" });
    }
    return this.transport.json("POST", path, { body: { run_after_ms: runAfterMs, mutation: args.mutation } });
  }

  /** A job in any state (`op.scheduled_job_not_found` once purged or if unknown). */
  async get(args: TenantScoped & { id: string }): Promise<JobStatus> {
    const answer = await this.transport.json<{ job: JobStatus }>("GET", this.transport.tenantPath(args.tenantId, "schedule", args.id));
    return answer.job;
  }

  /** Cancels a pending job; any other state answers `op.scheduled_job_not_found` with `detail.state`. */
  async cancel(args: TenantScoped & { id: string }): Promise<void> {
    await this.transport.json("DELETE", this.transport.tenantPath(args.tenantId, "schedule", args.id));
  }

  /** The pending jobs, by `run_at` then id. */
  async list(args: TenantScoped = {}): Promise<ScheduledJob[]> {
    const answer = await this.transport.json<{ jobs: ScheduledJob[] }>("GET", this.transport.tenantPath(args.tenantId, "schedule"));
    return answer.jobs;
  }

  /** A finished job's result (`op.scheduled_job_not_found` until it has finished). */
  async result(args: TenantScoped & { id: string }): Promise<JobResult> {
    const answer = await this.transport.json<{ result: JobResult }>(
      "GET",
      this.transport.tenantPath(args.tenantId, "schedule", "history", args.id),
    );
    return answer.result;
  }
}

/** `nimbus.crons`: named recurring jobs on an interval or a cron expression. */
export class Crons {
  constructor(private readonly transport: Transport) {}

  /** Creates a cron (`op.already_exists` if the name is taken). */
  async create(args: TenantScoped & { name: string; schedule: CronSchedule; mutation: JobTarget }): Promise<void> {
    await this.transport.json("POST", this.transport.tenantPath(args.tenantId, "crons"), {
      body: { name: args.name, schedule: args.schedule, mutation: args.mutation },
    });
  }

  /** One cron (`op.not_found` when absent). */
  async get(args: TenantScoped & { name: string }): Promise<Cron> {
    const answer = await this.transport.json<{ cron: Cron }>("GET", this.transport.tenantPath(args.tenantId, "crons", args.name));
    return answer.cron;
  }

  /** Every cron of the tenant. */
  async list(args: TenantScoped = {}): Promise<Cron[]> {
    const answer = await this.transport.json<{ crons: Cron[] }>("GET", this.transport.tenantPath(args.tenantId, "crons"));
    return answer.crons;
  }

  /**
   * Changes any of `enabled`, `schedule`, `mutation`; re-enabling or a new schedule recomputes
   * `next_run` from now. Resolves to the updated cron.
   */
  async update(
    args: TenantScoped & { name: string; enabled?: boolean; schedule?: CronSchedule; mutation?: JobTarget },
  ): Promise<Cron> {
    const body: Record<string, unknown> = {};
    if (args.enabled !== undefined) body.enabled = args.enabled;
    if (args.schedule !== undefined) body.schedule = args.schedule;
    if (args.mutation !== undefined) body.mutation = args.mutation;
    const answer = await this.transport.json<{ cron: Cron }>("PATCH", this.transport.tenantPath(args.tenantId, "crons", args.name), { body });
    return answer.cron;
  }

  /** Deletes a cron and its run history (also resolves when it does not exist). */
  async delete(args: TenantScoped & { name: string }): Promise<void> {
    await this.transport.json("DELETE", this.transport.tenantPath(args.tenantId, "crons", args.name));
  }

  /** The cron's last runs, newest first (`limit` 1..100, default 20). */
  async runs(args: TenantScoped & { name: string; limit?: number }): Promise<CronRun[]> {
    const answer = await this.transport.json<{ runs: CronRun[] }>(
      "GET",
      this.transport.tenantPath(args.tenantId, "crons", args.name, "runs"),
      { query: { limit: args.limit } },
    );
    return answer.runs;
  }
}
