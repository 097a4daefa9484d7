//! The OTA review reply KPIs (issue 13), per site: the reply rate (reviews received whose
//! public reply was posted), the mean reply time and the share posted by the deadline.
//! Counted on the review's receipt day at its property, overall and as `site:<OtaSite>`.
//! A review arrives as FeedbackReceived (channel OTA_REVIEW) and its reply as one
//! FeedbackReplied of kind OTA_REPLY with the site set; both are of aggregate "feedback",
//! so the reply never comes before its review, and feedback-intake sends it once.

use crate::ingest::{day, time};
use crate::state::State;
use crate::store::rollups::{Add, add};
use guestloop_proto::events::v1::{FeedbackReceived, FeedbackReplied};
use guestloop_proto::feedback::v1::{FeedbackChannel, FeedbackReplyKind};
use sqlx::PgConnection;

/// Reviews received (the rate's denominator); its numerator is a posted reply.
pub const REPLY: &str = "ota_reply";
/// Seconds from receipt to the posted reply (sum over n replies).
pub const REPLY_TIME: &str = "ota_reply_time";
/// Replies with a deadline, and those posted by it.
pub const ON_TIME: &str = "ota_reply_on_time";

fn breakdowns(site: i32) -> [String; 2] {
    [String::new(), format!("site:{site}")]
}

pub async fn received(
    conn: &mut PgConnection,
    state: &State,
    f: &FeedbackReceived,
) -> Result<(), sqlx::Error> {
    if f.channel != FeedbackChannel::OtaReview as i32 || f.ota_site == 0 {
        return Ok(());
    }
    let Some(t) = time(&f.receive_time) else {
        return Ok(());
    };
    let d = day(state, &f.property_id, t);
    for b in breakdowns(f.ota_site) {
        add(conn, &f.property_id, d, REPLY, &b, Add::rate(false)).await?;
    }
    Ok(())
}

pub async fn replied(
    conn: &mut PgConnection,
    state: &State,
    r: &FeedbackReplied,
) -> Result<(), sqlx::Error> {
    if r.kind != FeedbackReplyKind::OtaReply as i32 || r.ota_site == 0 {
        return Ok(());
    }
    let (Some(received), Some(reply)) = (time(&r.receive_time), time(&r.reply_time)) else {
        return Ok(());
    };
    let d = day(state, &r.property_id, received);
    let secs = (reply - received).num_seconds().max(0) as f64;
    let due = time(&r.reply_due_time);
    for b in breakdowns(r.ota_site) {
        add(conn, &r.property_id, d, REPLY, &b, Add::hit()).await?;
        add(conn, &r.property_id, d, REPLY_TIME, &b, Add::score(secs)).await?;
        if let Some(due) = due {
            add(
                conn,
                &r.property_id,
                d,
                ON_TIME,
                &b,
                Add::rate(reply <= due),
            )
            .await?;
        }
    }
    Ok(())
}
