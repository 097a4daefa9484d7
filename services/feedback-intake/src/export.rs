//! feedback-intake's share of a subject-access export (issue 11): the guest's feedback with
//! its survey answers, their cases and each case's history, as GetFeedback, GetCase and
//! ListCaseEvents answer them, limited to the properties the exporting caller sees.

use crate::convert;
use crate::state::State;
use crate::store::{cases, events, feedback};
use guestloop_proto::events::v1::ExportGuestDataResponse;
use uuid::Uuid;

pub async fn export(
    state: &State,
    guest_ids: &[String],
    visible: Option<&[String]>,
) -> Result<ExportGuestDataResponse, sqlx::Error> {
    // Ids here are UUIDs; one that is not names nothing here.
    let ids: Vec<Uuid> = guest_ids
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let mut conn = state.pool.acquire().await?;
    let items = feedback::of_guests(&mut *conn, &ids, visible).await?;
    let case_rows = cases::of_guests(&mut *conn, &ids, visible).await?;
    let mut case_list = Vec::with_capacity(case_rows.len());
    for c in &case_rows {
        let feedback_ids = feedback::ids_of_case(&mut *conn, c.id).await?;
        case_list.push(convert::case(c, &feedback_ids));
    }
    let case_ids: Vec<Uuid> = case_rows.iter().map(|c| c.id).collect();
    let case_events = events::of_cases(&mut *conn, &case_ids).await?;
    Ok(ExportGuestDataResponse {
        feedback: items.iter().map(convert::feedback).collect(),
        cases: case_list,
        case_events,
        ..Default::default()
    })
}
