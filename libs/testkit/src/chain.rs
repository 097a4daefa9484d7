//! The test chain: two regions, four properties in three time zones.

pub const TEST_CHAIN_TOML: &str = r#"
[chain]
name = "Test Hotels"

[[chain.regions]]
id = "east"
name = "East China"

[[chain.regions]]
id = "south"
name = "South China"

[[chain.properties]]
id = "sh-bund"
name = "Shanghai Bund"
region = "east"
time_zone = "Asia/Shanghai"
default_language = "zh-CN"

[[chain.properties]]
id = "hz-lake"
name = "Hangzhou West Lake"
region = "east"
time_zone = "Asia/Shanghai"
default_language = "zh-CN"

[[chain.properties]]
id = "hk-harbour"
name = "Hong Kong Harbour"
region = "south"
time_zone = "Asia/Hong_Kong"
default_language = "zh-TW"

[[chain.properties]]
id = "sz-bay"
name = "Shenzhen Bay"
region = "south"
time_zone = "Asia/Shanghai"
default_language = "zh-CN"
"#;
