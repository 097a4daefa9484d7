//! notification's share of a subject-access export (issue 11): the messages to or about
//! the guest with their delivery status and attempts, as GetMessage answers them, limited
//! to the properties the exporting caller sees. Rendered bodies are never stored, so the
//! export names the template and variables each message was sent with.

use crate::convert;
use crate::state::State;
use crate::store::messages;
use guestloop_proto::events::v1::ExportGuestDataResponse;

pub async fn export(
    state: &State,
    guest_ids: &[String],
    visible: Option<&[String]>,
) -> Result<ExportGuestDataResponse, sqlx::Error> {
    let rows = messages::of_guests(&state.pool, guest_ids, visible).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let attempts = messages::attempts(&state.pool, row.id).await?;
        out.push(convert::message(row, &attempts));
    }
    Ok(ExportGuestDataResponse {
        messages: out,
        ..Default::default()
    })
}
