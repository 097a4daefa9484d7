//! The token checks, case by case: each kind of bad token is refused for its own reason.

use super::*;
use crate::generate_key_pair_pem;

fn keys() -> (SigningKey, VerifyingKey) {
    let (private, public) = generate_key_pair_pem();
    (
        SigningKey::from_pem(&private).unwrap(),
        VerifyingKey::from_pem(&public).unwrap(),
    )
}

fn pair() -> (TokenSigner, TokenVerifier) {
    let (signing, verifying) = keys();
    (
        TokenSigner::new(signing, "guestloop"),
        TokenVerifier::new(verifying, "guestloop"),
    )
}

fn head_office(s: &TokenSigner) -> String {
    s.issue("x", Role::HeadOffice, vec![], None, Duration::from_secs(60))
        .unwrap()
}

#[test]
fn round_trip() {
    let (s, v) = pair();
    let t = s
        .issue(
            "staff-1",
            Role::PropertyStaff,
            vec!["sh-bund".into()],
            None,
            Duration::from_secs(60),
        )
        .unwrap();
    let c = v.verify(&t).unwrap();
    assert_eq!(c.aud, DEFAULT_AUDIENCE);
    assert_eq!(
        c.principal().unwrap().scope,
        Scope::Properties(vec!["sh-bund".into()])
    );
}

#[test]
fn a_remembered_token_still_expires() {
    let (s, v) = pair();
    let good = head_office(&s);
    let mut claims = v.verify(&good).unwrap();
    // One second of leeway left: accepted (and remembered) now, expired soon after.
    claims.exp = chrono::Utc::now().timestamp() - v.leeway_secs + 1;
    let short = s.sign(&claims);
    assert_eq!(v.verify(&short), Ok(claims.clone()));
    assert_eq!(v.verify(&short), Ok(claims));
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(v.verify(&short), Err(TokenError::Expired));
    assert_eq!(v.verify(&short), Err(TokenError::Expired));
    assert!(v.verify(&good).is_ok());
}

/// Every way a token can be wrong, each refused with its own reason.
#[test]
fn refuses_each_kind_of_bad_token() {
    let (s, v) = pair();
    let good = head_office(&s);
    let claims = v.verify(&good).unwrap();
    let now = chrono::Utc::now().timestamp();
    let parts: Vec<&str> = good.split('.').collect();
    let header_json = |json: &str| B64.encode(json.as_bytes());
    let kid = s.key.verifying_key().key_id();

    // A token signed by another key that claims this key's id.
    let (other_key, _) = keys();
    let mut impostor_header = Header::new(Algorithm::EdDSA);
    impostor_header.kid = Some(kid.clone());
    let impostor =
        jsonwebtoken::encode(&impostor_header, &claims, &other_key.encoding_key()).unwrap();
    // Claims changed after signing (the token passed off as someone else's).
    let forged_payload = B64.encode(
        serde_json::to_vec(&Claims {
            sub: "someone-else".into(),
            ..claims.clone()
        })
        .unwrap(),
    );
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut c = claims.clone();
        f(&mut c);
        s.sign(&c)
    };
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "another key (unknown kid)",
            head_office(&TokenSigner::new(keys().0, "guestloop")),
            TokenError::UnknownKey,
        ),
        (
            "another key claiming our kid",
            impostor,
            TokenError::Signature,
        ),
        (
            "payload changed after signing",
            format!("{}.{forged_payload}.{}", parts[0], parts[2]),
            TokenError::Signature,
        ),
        (
            "expired",
            with(&|c| {
                c.exp = now - 3600;
                c.iat = now - 7200;
                c.nbf = Some(now - 7200);
            }),
            TokenError::Expired,
        ),
        (
            "not valid before an hour from now",
            with(&|c| c.nbf = Some(now + 3600)),
            TokenError::NotYetValid,
        ),
        (
            "issued an hour from now",
            with(&|c| c.iat = now + 3600),
            TokenError::NotYetValid,
        ),
        (
            "another issuer",
            with(&|c| c.iss = "someone-else".into()),
            TokenError::Issuer,
        ),
        (
            "another audience",
            with(&|c| c.aud = "another-api".into()),
            TokenError::Audience,
        ),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                header_json(r#"{"alg":"none","typ":"JWT"}"#),
                parts[1]
            ),
            TokenError::Algorithm,
        ),
        (
            "alg HS256 keyed with the public key",
            format!(
                "{}.{}.{}",
                header_json(&format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#)),
                parts[1],
                parts[2]
            ),
            TokenError::Algorithm,
        ),
        (
            "no kid",
            format!(
                "{}.{}.{}",
                header_json(r#"{"alg":"EdDSA","typ":"JWT"}"#),
                parts[1],
                parts[2]
            ),
            TokenError::UnknownKey,
        ),
        ("not a JWT", "garbage".into(), TokenError::Malformed),
    ];
    for (case, token, expected) in cases {
        assert_eq!(v.verify(&token), Err(expected), "{case}");
    }
    // The good token itself passes, before and after the bad ones.
    assert!(v.verify(&good).is_ok());
}

#[test]
fn during_a_rotation_both_keys_are_accepted_and_afterwards_only_the_new() {
    let (old_signing, old_verifying) = keys();
    let (new_signing, new_verifying) = keys();
    let old = TokenSigner::new(old_signing, "guestloop");
    let new = TokenSigner::new(new_signing, "guestloop");
    let rotating = TokenVerifier::new(new_verifying.clone(), "guestloop").with_key(old_verifying);
    assert!(rotating.verify(&head_office(&old)).is_ok());
    assert!(rotating.verify(&head_office(&new)).is_ok());
    let rotated = TokenVerifier::new(new_verifying, "guestloop");
    assert_eq!(
        rotated.verify(&head_office(&old)),
        Err(TokenError::UnknownKey)
    );
    assert!(rotated.verify(&head_office(&new)).is_ok());
}

#[test]
fn a_configured_audience_is_minted_and_checked() {
    let (signing, verifying) = keys();
    let s = TokenSigner::new(signing, "guestloop").with_audience("guestloop-staging");
    let staging =
        TokenVerifier::new(verifying.clone(), "guestloop").with_audience("guestloop-staging");
    let production = TokenVerifier::new(verifying, "guestloop");
    let t = head_office(&s);
    assert!(staging.verify(&t).is_ok());
    assert_eq!(production.verify(&t), Err(TokenError::Audience));
}

#[test]
fn scope_must_fit_role() {
    let (s, _) = pair();
    let cases = [
        (Role::PropertyStaff, vec![], None),
        (Role::RegionalManager, vec![], None),
        (Role::HeadOffice, vec!["a".to_string()], None),
        (Role::Service, vec![], Some("east".to_string())),
    ];
    for (role, properties, region) in cases {
        assert!(
            s.issue("x", role, properties, region, Duration::from_secs(60))
                .is_err(),
            "{role:?}"
        );
    }
}
