//! Scoring likely duplicates: the same email or phone is strong evidence, a similar name
//! weaker. Names are compared after folding case and spaces, by edit distance.

use crate::store::GuestRecord;

/// (score 0-1, reasons) for `candidate` as a duplicate of `guest`; `None` if unrelated.
pub fn score(guest: &GuestRecord, candidate: &GuestRecord) -> Option<(f64, Vec<String>)> {
    let (a, b) = (&guest.profile, &candidate.profile);
    let mut reasons = Vec::new();
    let mut score: f64 = 0.0;
    if let (Some(x), Some(y)) = (&a.email, &b.email)
        && x.eq_ignore_ascii_case(y)
    {
        reasons.push("email".to_string());
        score += 0.6;
    }
    if let (Some(x), Some(y)) = (&a.phone, &b.phone)
        && x == y
    {
        reasons.push("phone".to_string());
        score += 0.5;
    }
    let similarity = name_similarity(&full_name(guest), &full_name(candidate));
    if similarity >= 0.8 {
        reasons.push("name".to_string());
        score += 0.4 * similarity;
    }
    (!reasons.is_empty()).then(|| (score.min(1.0), reasons))
}

fn full_name(g: &GuestRecord) -> String {
    let p = &g.profile;
    format!(
        "{}{}",
        p.given_name.as_deref().unwrap_or(""),
        p.family_name.as_deref().unwrap_or("")
    )
    .to_lowercase()
    .chars()
    .filter(|c| !c.is_whitespace() && *c != '-' && *c != '.')
    .collect()
}

/// 1 − (edit distance / longer length), over characters (so it works for Chinese names).
pub fn name_similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f64 / a.len().max(b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::name_similarity;

    #[test]
    fn similar_names() {
        assert!(name_similarity("weizhang", "weizhang") > 0.99);
        assert!(name_similarity("weizhang", "weizhan") >= 0.8);
        assert!(name_similarity("张伟", "张伟") > 0.99);
        assert!(name_similarity("weizhang", "mariagarcia") < 0.5);
    }
}
