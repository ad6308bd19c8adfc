//! Rows of a tenant's scheduling tables: `scheduled_jobs`, `crons`, `cron_runs` and
//! `executions`. They live in the tenant database so that a job's writes and its execution id
//! commit in one SQLite transaction.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Context, StoreResult};

/// A scheduled job row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Job id (a lowercase ULID).
    pub id: String,
    /// Earliest start, epoch ms.
    pub run_at: i64,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub state: String,
    /// The target, JSON text.
    pub mutation: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Start of the last attempt, epoch ms.
    pub started_at: Option<i64>,
    /// End (or cancellation) time, epoch ms.
    pub finished_at: Option<i64>,
    /// Executions started.
    pub attempts: i64,
    /// Failure message.
    pub error: Option<String>,
    /// Failure catalog code.
    pub error_code: Option<String>,
    /// Return value, JSON text.
    pub value: Option<String>,
}

const JOB_COLUMNS: &str =
    "id, run_at, state, mutation, created_at, started_at, finished_at, attempts, error, error_code, value";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: row.get(0)?,
        run_at: row.get(1)?,
        state: row.get(2)?,
        mutation: row.get(3)?,
        created_at: row.get(4)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        attempts: row.get(7)?,
        error: row.get(8)?,
        error_code: row.get(9)?,
        value: row.get(10)?,
    })
}

/// Inserts a new job row.
pub fn insert_job(conn: &Connection, job: &JobRow) -> StoreResult<()> {
    let sql =
        format!("INSERT INTO scheduled_jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                job.id,
                job.run_at,
                job.state,
                job.mutation,
                job.created_at,
                job.started_at,
                job.finished_at,
                job.attempts,
                job.error,
                job.error_code,
                job.value
            ])
        })
        .context("inserting a scheduled job")?;
    Ok(())
}

/// Replaces every mutable column of an existing job row.
pub fn update_job(conn: &Connection, job: &JobRow) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE scheduled_jobs SET run_at = ?2, state = ?3, started_at = ?4, finished_at = ?5, attempts = ?6, \
         error = ?7, error_code = ?8, value = ?9 WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            job.id,
            job.run_at,
            job.state,
            job.started_at,
            job.finished_at,
            job.attempts,
            job.error,
            job.error_code,
            job.value
        ])
    })
    .context("updating a scheduled job")?;
    Ok(())
}

/// Reads one job.
pub fn get_job(conn: &Connection, id: &str) -> StoreResult<Option<JobRow>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM scheduled_jobs WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], job_from_row).optional())
        .context("reading a scheduled job")
}

/// Jobs in `state`, by `run_at` then id, with `run_at <= until`, at most `limit` (all when `None`).
pub fn jobs_in_state(conn: &Connection, state: &str, until: i64, limit: Option<usize>) -> StoreResult<Vec<JobRow>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM scheduled_jobs WHERE state = ?1 AND run_at <= ?2 ORDER BY run_at, id LIMIT ?3"
    );
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&sql).context("listing scheduled jobs")?;
    let rows = stmt.query_map(params![state, until, limit], job_from_row).context("listing scheduled jobs")?;
    rows.collect::<Result<_, _>>().context("listing scheduled jobs")
}

/// Number of jobs in `state`.
pub fn count_jobs(conn: &Connection, state: &str) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM scheduled_jobs WHERE state = ?1")
        .and_then(|mut stmt| stmt.query_row(params![state], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .context("counting scheduled jobs")
}

/// Moves every job in `from` to `to` with `run_at = run_at`; returns how many moved.
pub fn reset_jobs(conn: &Connection, from: &str, to: &str, run_at: i64) -> StoreResult<usize> {
    conn.prepare_cached("UPDATE scheduled_jobs SET state = ?2, run_at = ?3 WHERE state = ?1")
        .and_then(|mut stmt| stmt.execute(params![from, to, run_at]))
        .context("resetting scheduled jobs")
}

/// Deletes finished jobs (any of `states`) that finished before `before`, with their execution
/// ids; returns how many jobs were removed.
pub fn purge_jobs(conn: &Connection, states: &[&str], before: i64) -> StoreResult<usize> {
    let mut removed = 0;
    for state in states {
        conn.prepare_cached(
            "DELETE FROM executions WHERE id IN (SELECT 'scheduled:' || id FROM scheduled_jobs \
             WHERE state = ?1 AND finished_at < ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![state, before]))
        .context("purging execution ids")?;
        removed += conn
            .prepare_cached("DELETE FROM scheduled_jobs WHERE state = ?1 AND finished_at < ?2")
            .and_then(|mut stmt| stmt.execute(params![state, before]))
            .context("purging scheduled jobs")?;
    }
    Ok(removed)
}

/// A cron definition row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRow {
    /// Cron name.
    pub name: String,
    /// The schedule, JSON text.
    pub schedule: String,
    /// The target, JSON text.
    pub mutation: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Start of the last firing, epoch ms.
    pub last_run: Option<i64>,
    /// Next due time, epoch ms (`None` while disabled).
    pub next_run: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

const CRON_COLUMNS: &str = "name, schedule, mutation, enabled, last_run, next_run, created_at";

fn cron_from_row(row: &Row<'_>) -> rusqlite::Result<CronRow> {
    Ok(CronRow {
        name: row.get(0)?,
        schedule: row.get(1)?,
        mutation: row.get(2)?,
        enabled: row.get(3)?,
        last_run: row.get(4)?,
        next_run: row.get(5)?,
        created_at: row.get(6)?,
    })
}

/// Inserts or replaces a cron row.
pub fn put_cron(conn: &Connection, cron: &CronRow) -> StoreResult<()> {
    let sql = format!("INSERT OR REPLACE INTO crons ({CRON_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                cron.name,
                cron.schedule,
                cron.mutation,
                cron.enabled,
                cron.last_run,
                cron.next_run,
                cron.created_at
            ])
        })
        .context("writing a cron")?;
    Ok(())
}

/// Reads one cron.
pub fn get_cron(conn: &Connection, name: &str) -> StoreResult<Option<CronRow>> {
    let sql = format!("SELECT {CRON_COLUMNS} FROM crons WHERE name = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![name], cron_from_row).optional())
        .context("reading a cron")
}

/// Every cron, by name.
pub fn list_crons(conn: &Connection) -> StoreResult<Vec<CronRow>> {
    let sql = format!("SELECT {CRON_COLUMNS} FROM crons ORDER BY name");
    let mut stmt = conn.prepare_cached(&sql).context("listing crons")?;
    let rows = stmt.query_map([], cron_from_row).context("listing crons")?;
    rows.collect::<Result<_, _>>().context("listing crons")
}

/// Number of crons.
pub fn count_crons(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM crons")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .context("counting crons")
}

/// Deletes a cron with its run history; returns whether it existed.
pub fn delete_cron(conn: &Connection, name: &str) -> StoreResult<bool> {
    conn.prepare_cached("DELETE FROM cron_runs WHERE cron = ?1")
        .and_then(|mut stmt| stmt.execute(params![name]))
        .context("deleting cron runs")?;
    let n = conn
        .prepare_cached("DELETE FROM crons WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute(params![name]))
        .context("deleting a cron")?;
    Ok(n > 0)
}

/// The earliest due time of any pending job or enabled cron.
pub fn next_due(conn: &Connection) -> StoreResult<Option<i64>> {
    conn.prepare_cached(
        "SELECT MIN(t) FROM (SELECT MIN(run_at) AS t FROM scheduled_jobs WHERE state = 'pending' \
         UNION ALL SELECT MIN(next_run) AS t FROM crons WHERE enabled = 1 AND next_run IS NOT NULL)",
    )
    .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, Option<i64>>(0)))
    .context("reading the next due time")
}

/// Whether the tenant holds any job or cron at all (finished jobs included: they still await
/// their purge).
pub fn has_any(conn: &Connection) -> StoreResult<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM scheduled_jobs) OR EXISTS (SELECT 1 FROM crons)")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, bool>(0)))
        .context("looking for scheduling rows")
}

/// One cron run row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRunRow {
    /// The cron.
    pub cron: String,
    /// Run id (a lowercase ULID, so id order is start order).
    pub run_id: String,
    /// The instant the firing was due, epoch ms.
    pub scheduled_at: i64,
    /// Start, epoch ms.
    pub started_at: i64,
    /// End, epoch ms.
    pub finished_at: i64,
    /// `completed`, `failed` or `skipped`.
    pub outcome: String,
    /// Failure message.
    pub error: Option<String>,
    /// Failure catalog code.
    pub error_code: Option<String>,
}

/// Inserts a run and keeps only the newest `keep` runs of its cron.
pub fn insert_cron_run(conn: &Connection, run: &CronRunRow, keep: usize) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO cron_runs (cron, run_id, scheduled_at, started_at, finished_at, outcome, error, error_code) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            run.cron,
            run.run_id,
            run.scheduled_at,
            run.started_at,
            run.finished_at,
            run.outcome,
            run.error,
            run.error_code
        ])
    })
    .context("inserting a cron run")?;
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM cron_runs WHERE cron = ?1 AND run_id NOT IN \
         (SELECT run_id FROM cron_runs WHERE cron = ?1 ORDER BY run_id DESC LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![run.cron, keep]))
    .context("trimming cron runs")?;
    Ok(())
}

/// A cron's newest runs first, at most `limit`.
pub fn cron_runs(conn: &Connection, cron: &str, limit: usize) -> StoreResult<Vec<CronRunRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT cron, run_id, scheduled_at, started_at, finished_at, outcome, error, error_code \
             FROM cron_runs WHERE cron = ?1 ORDER BY run_id DESC LIMIT ?2",
        )
        .context("listing cron runs")?;
    let rows = stmt
        .query_map(params![cron, limit], |row| {
            Ok(CronRunRow {
                cron: row.get(0)?,
                run_id: row.get(1)?,
                scheduled_at: row.get(2)?,
                started_at: row.get(3)?,
                finished_at: row.get(4)?,
                outcome: row.get(5)?,
                error: row.get(6)?,
                error_code: row.get(7)?,
            })
        })
        .context("listing cron runs")?;
    rows.collect::<Result<_, _>>().context("listing cron runs")
}

/// Records an execution id; returns `false` when it was already recorded (the work it names
/// has committed before).
pub fn record_execution(conn: &Connection, id: &str, now: i64) -> StoreResult<bool> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO executions (id, executed_at) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![id, now]))
        .context("recording an execution id")?;
    Ok(n == 1)
}

/// Forgets cron execution ids recorded before `before` (job ids go with their jobs).
pub fn purge_cron_executions(conn: &Connection, before: i64) -> StoreResult<usize> {
    conn.prepare_cached("DELETE FROM executions WHERE id LIKE 'cron:%' AND executed_at < ?1")
        .and_then(|mut stmt| stmt.execute(params![before]))
        .context("purging execution ids")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Access, open_tenant};

    #[test]
    fn execution_ids_are_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open_tenant(&dir.path().join("t.sqlite3"), Access::Write).expect("open");
        assert!(record_execution(&conn, "scheduled:a", 1).expect("record"));
        assert!(!record_execution(&conn, "scheduled:a", 2).expect("record again"));
    }

    #[test]
    fn cron_runs_keep_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open_tenant(&dir.path().join("t.sqlite3"), Access::Write).expect("open");
        for i in 0..5 {
            let run = CronRunRow {
                cron: "c".into(),
                run_id: format!("r{i}"),
                scheduled_at: i,
                started_at: i,
                finished_at: i,
                outcome: "completed".into(),
                error: None,
                error_code: None,
            };
            insert_cron_run(&conn, &run, 3).expect("insert");
        }
        let ids: Vec<_> = cron_runs(&conn, "c", 10).expect("list").into_iter().map(|r| r.run_id).collect();
        assert_eq!(ids, ["r4", "r3", "r2"]);
    }
}
