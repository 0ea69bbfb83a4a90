//! `PatReportPoison`: a queue trigger on the jobs' poison queue. The host moves a job there
//! after [`MAX_ATTEMPTS`] deliveries that ended without an answer (the worker crashed, ran
//! out of memory or hit the function timeout). Marking the
//! run failed here means a caller polling its status gets an answer instead of a run that
//! says `running` forever. The message itself is logged in full (a job holds no secret).

use super::protocol::{InvokeRequest, InvokeResponse, QueueMetadata};
use super::state::AppState;
use super::worker::{Outcome, open_run, read_job};
use crate::lifecycle::MAX_ATTEMPTS;
use time::OffsetDateTime;

pub async fn handle(state: &AppState, invocation: &InvokeRequest) -> Outcome {
    let meta = QueueMetadata::from_invocation(invocation);
    let mut out = InvokeResponse::default();
    let job = match read_job(invocation) {
        Ok(job) => job,
        Err(problem) => {
            out.log(format!(
                "Dropped poison message {}: {problem}.",
                meta.id.as_deref().unwrap_or("?")
            ));
            return Outcome::Done(out);
        }
    };
    let (runs, mut status) = match open_run(state, &job).await {
        Ok(opened) => opened,
        Err(retry) => return retry,
    };
    let reason = format!(
        "the worker stopped without an answer on all {MAX_ATTEMPTS} attempts (crash, out of memory or function \
         timeout); see the function logs for run {}",
        job.run_id
    );
    if let Err(refused) = status.fail(reason, OffsetDateTime::now_utc()) {
        out.log(format!("Poison message ignored: {refused}."));
        return Outcome::Done(out);
    }
    if let Err(e) = runs.save_status(&status).await {
        return Outcome::Retry(format!("report storage: {e}"));
    }
    tracing::error!(run_id = %job.run_id, org = %job.org, job = %job.to_text(), "job reached the poison queue; run marked failed");
    out.log(format!(
        "Run {} for {} reached the poison queue and is marked failed.",
        job.run_id, job.org
    ));
    Outcome::Done(out)
}
