//! The scheduler's share of a subject-access export (issue 11): the follow-up tasks about
//! the guest and the contacts planned for them (timers), as GetTask and GetTimer answer
//! them, limited to the properties the exporting caller sees.

use crate::state::State;
use crate::store::{tasks, timers};
use guestloop_proto::events::v1::ExportGuestDataResponse;

pub async fn export(
    state: &State,
    guest_ids: &[String],
    visible: Option<&[String]>,
) -> Result<ExportGuestDataResponse, sqlx::Error> {
    let mut conn = state.pool.acquire().await?;
    let task_rows = tasks::of_guests(&mut *conn, guest_ids, visible).await?;
    let timer_rows = timers::of_guests(&mut *conn, guest_ids, visible).await?;
    Ok(ExportGuestDataResponse {
        tasks: task_rows.iter().map(super::tasks::task).collect(),
        timers: timer_rows.iter().map(super::timers::timer).collect(),
        ..Default::default()
    })
}
