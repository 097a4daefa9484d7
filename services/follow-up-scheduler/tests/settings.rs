//! The firing worker's settings: the defaults load, and a value the worker cannot run with
//! is refused at start, naming its key.

use guestloop_config::ConfigError;

fn load(extra: &str) -> Result<follow_up_scheduler::Settings, ConfigError> {
    let base = guestloop_testkit::service_layer("postgres://followup_svc@127.0.0.1:5432/guestloop");
    let mut layers: Vec<&str> = follow_up_scheduler::default_layers().to_vec();
    layers.push(guestloop_testkit::TEST_CHAIN_TOML);
    layers.push(&base);
    layers.push(extra);
    guestloop_config::load_from_env(&layers, None, std::iter::empty())
}

#[test]
fn the_defaults_run_two_firing_loops_per_replica() {
    let s = load("").expect("the defaults are valid");
    assert_eq!(s.timers.workers, 2);
    assert_eq!(s.timers.batch_size, 50);
}

#[test]
fn timer_settings_the_worker_cannot_run_with_are_refused() {
    let cases = [
        ("workers = 0", "timers.workers"),
        ("batch_size = 0", "timers.batch_size"),
        ("max_attempts = 0", "timers.max_attempts"),
        ("lease = \"20s\"\naction_timeout = \"15s\"", "timers.lease"),
    ];
    for (toml, expected) in cases {
        match load(&format!("[timers]\n{toml}\n")) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, expected, "{toml}"),
            other => panic!("{toml}: expected `{expected}` refused, got {other:?}"),
        }
    }
    assert!(load("[timers]\nworkers = 4\n").is_ok());
}
