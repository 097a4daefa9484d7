use super::*;

fn classifier() -> Classifier {
    Classifier::with_defaults()
}

fn rules_with(extra: &str) -> Result<ClassifierRules, String> {
    ClassifierRules::from_toml_layers(&[DEFAULT_RULES_TOML, extra])
}

#[test]
fn default_rules_parse_and_compile() {
    let rules = ClassifierRules::defaults();
    assert!(rules.min_score > 0.0);
    Classifier::new(&rules).unwrap();
}

#[test]
fn category_keys_match_the_proto_enum() {
    for (category, key) in CATEGORIES {
        let proto = category.as_str_name();
        let expected = proto
            .strip_prefix("CATEGORY_")
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(key, expected);
        assert_eq!(category_key(category), Some(key));
        assert_eq!(category_from_key(key), Some(category));
    }
    assert_eq!(category_key(Category::Unspecified), None);
}

#[test]
fn negation_flips_sentiment() {
    let c = classifier();
    // Negated negative words: no longer negative.
    for text in [
        "The room was not dirty at all.",
        "房间不脏",
        "房間沒有問題，很滿意",
    ] {
        let r = c.classify(text, None);
        assert_ne!(r.sentiment, Sentiment::Negative, "{text}: {r:?}");
        assert!(
            r.sentiment_matched.iter().any(|t| t.contains("(negated)"))
                || r.sentiment == Sentiment::Positive,
            "{text}: {r:?}"
        );
    }
    // Negated positive words: negative.
    for text in [
        "The room was not clean.",
        "房间不干净",
        "房間一點也不乾淨",
        "Staff weren't friendly",
        "服务不是很好",
    ] {
        let r = c.classify(text, None);
        assert_eq!(r.sentiment, Sentiment::Negative, "{text}: {r:?}");
    }
    // "不错" is a positive word, not a negated "错"; "不过" is not a negator.
    let r = c.classify("早餐不错，不过咖啡一般", None);
    assert_ne!(r.sentiment, Sentiment::Negative, "{r:?}");
    // Negation does not reach across a clause break.
    let r = c.classify("No complaints. Clean room.", None);
    assert_eq!(r.sentiment, Sentiment::Positive, "{r:?}");
}

#[test]
fn not_dirty_stays_hygiene() {
    let r = classifier().classify("Not dirty, but not spotless either.", Some("en"));
    assert_eq!(r.category, Category::Hygiene, "{r:?}");
}

#[test]
fn traditional_text_is_folded_and_detected() {
    let c = classifier();
    let trad = c.classify("房間很髒，浴室有黴味，床單上還有頭髮", None);
    let simp = c.classify("房间很脏，浴室有霉味，床单上还有头发", None);
    assert_eq!(trad.category, Category::Hygiene, "{trad:?}");
    assert_eq!(simp.category, Category::Hygiene, "{simp:?}");
    assert_eq!(trad.sentiment, Sentiment::Negative);
    assert_eq!(trad.language, "zh-TW");
    assert_eq!(simp.language, "zh-CN");
    // Same keywords, same decision, whatever the script.
    assert_eq!(trad.matched, simp.matched);
    assert_eq!(trad.confidence, simp.confidence);

    // Taiwan vocabulary OpenCC converts (網路→网络) matches the mainland keyword; what it
    // does not convert (冷氣, 櫃檯) is listed in converted form (冷气, 柜台).
    let r = c.classify("冷氣壞掉了，打給櫃檯也沒人來修", None);
    assert_eq!(r.category, Category::FacilityMaintenance, "{r:?}");
    assert_eq!(r.language, "zh-TW");
    let r = c.classify("房間的網路一直斷線", None);
    assert_eq!(r.category, Category::FacilityMaintenance, "{r:?}");
    assert_eq!(r.matched, ["网络"], "{r:?}");
}

#[test]
fn language_detection_and_hints() {
    assert_eq!(detect_language("The room was great"), "en");
    assert_eq!(detect_language("房间wifi很慢"), "zh-CN");
    assert_eq!(detect_language("房間的網路很慢"), "zh-TW");
    assert_eq!(
        detect_language("Stayed near 北京 station, lovely hotel overall"),
        "en"
    );
    assert_eq!(detect_language("👍👍"), "en");
    let c = classifier();
    assert_eq!(c.classify("房间很好", Some("zh-TW")).language, "zh-TW");
    assert_eq!(c.classify("房间很好", Some("zh_Hant_HK")).language, "zh-TW");
    assert_eq!(c.classify("房間很好", Some("zh-Hans")).language, "zh-CN");
    assert_eq!(c.classify("房間很乾淨", Some("zh")).language, "zh-TW");
    assert_eq!(c.classify("clean", Some("en-GB")).language, "en");
    assert_eq!(c.classify("房間很乾淨", Some("fr")).language, "zh-TW");
}

#[test]
fn mixed_sentiment() {
    let c = classifier();
    for text in [
        "Lovely staff but the room was dirty and the shower was broken.",
        "前台很热情，但是房间太吵了，一晚上没睡好",
        "房間很乾淨，可惜隔音很差",
    ] {
        let r = c.classify(text, None);
        assert_eq!(r.sentiment, Sentiment::Mixed, "{text}: {r:?}");
    }
    assert_eq!(
        c.classify("Friendly staff and a spotless room", None)
            .sentiment,
        Sentiment::Positive
    );
    assert_eq!(
        c.classify("请问早餐几点开始", None).sentiment,
        Sentiment::Neutral
    );
}

#[test]
fn category_default_sentiment_applies_without_sentiment_words() {
    let c = classifier();
    // A fault with no sentiment word is a complaint …
    for text in ["The TV remote has no batteries", "房间的空调遥控器没电了"] {
        let r = c.classify(text, None);
        assert_eq!(r.category, Category::FacilityMaintenance, "{r:?}");
        assert!(r.sentiment_matched.is_empty(), "{r:?}");
        assert_eq!(r.sentiment, Sentiment::Negative, "{r:?}");
    }
    // … a lost-property request is not.
    let r = c.classify("我的充电器落在房间了", None);
    assert_eq!(r.category, Category::LostProperty, "{r:?}");
    assert_eq!(r.sentiment, Sentiment::Neutral, "{r:?}");
}

#[test]
fn categories_on_typical_texts() {
    let c = classifier();
    let cases = [
        (
            "The air conditioning is broken",
            Category::FacilityMaintenance,
        ),
        ("空调坏了", Category::FacilityMaintenance),
        ("隔壁太吵了", Category::Noise),
        (
            "I was charged twice for the minibar",
            Category::BillingPrice,
        ),
        ("我的耳机落在房间了", Category::LostProperty),
        ("洗衣房把衣服洗坏了，要求赔偿", Category::CompensationClaim),
        ("The front desk staff were rude", Category::ServiceAttitude),
        ("早餐很难吃", Category::FoodAndBeverage),
        (
            "Nobody told us the pool was closed",
            Category::CommunicationInformation,
        ),
        ("Great location", Category::Other),
        ("ok", Category::Other),
        ("", Category::Other),
    ];
    for (text, want) in cases {
        let r = c.classify(text, None);
        assert_eq!(r.category, want, "{text}: {r:?}");
        assert!((0.0..=1.0).contains(&r.confidence), "{r:?}");
        if want != Category::Other {
            assert!(!r.matched.is_empty(), "{text}: {r:?}");
        }
    }
}

#[test]
fn word_boundaries_and_wildcards() {
    let c = classifier();
    // "ac" is a keyword, "face"/"place" are not matches of it.
    let r = c.classify("Nice place, lovely face cream in the bathroom", None);
    assert!(!r.matched.iter().any(|k| k == "ac"), "{r:?}");
    // "stain*" matches "stained"; apostrophes end words ("restaurant's").
    let r = c.classify("The sheets were stained", None);
    assert_eq!(r.category, Category::Hygiene, "{r:?}");
    assert!(r.matched.iter().any(|k| k == "stain*"), "{r:?}");
    let r = c.classify("The restaurant's dim sum was excellent", None);
    assert_eq!(r.category, Category::FoodAndBeverage, "{r:?}");
    // An English keyword inside Chinese text.
    let r = c.classify("房间wifi一直掉线", None);
    assert_eq!(r.category, Category::FacilityMaintenance, "{r:?}");
    assert!(r.matched.iter().any(|k| k == "wifi"), "{r:?}");
}

#[test]
fn longer_match_hides_shorter_one() {
    let c = classifier();
    // 卫生间 (bathroom) is a blocker hiding 卫生 (hygiene).
    let r = c.classify("卫生间", None);
    assert_eq!(r.category, Category::Other, "{r:?}");
    assert!(r.matched.is_empty(), "{r:?}");
    // 出差 (business trip) hides 差 (bad).
    let r = c.classify("出差", None);
    assert_eq!(r.sentiment, Sentiment::Neutral, "{r:?}");
}

#[test]
fn deterministic() {
    let c = classifier();
    let text = "房間很乾淨，但是冷氣壞了，櫃檯人員態度也很差，要求退一晚房費作為補償。";
    let first = c.classify(text, None);
    for _ in 0..20 {
        assert_eq!(c.classify(text, None), first);
    }
    let again = classifier().classify(text, None);
    assert_eq!(again, first);
    assert_eq!(first.category, Category::CompensationClaim, "{first:?}");
}

#[test]
fn long_texts_are_fast() {
    let c = classifier();
    let chunk = "房间不干净，非常吵，但是前台很热情。The room was not clean and very noisy, but lovely staff! ";
    let text = chunk.repeat(10_000 / chunk.chars().count() + 1);
    let started = std::time::Instant::now();
    let r = c.classify(&text, None);
    let elapsed = started.elapsed();
    assert_eq!(r.sentiment, Sentiment::Mixed, "{:?}", r.sentiment);
    // Generous: a debug build on a busy CI machine; release takes about a millisecond.
    assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}");
}

#[test]
fn unknown_key_in_rules_is_an_error() {
    let err = rules_with("[classifier.categories.hygeine]\nweight = 1.0\nzh = []\nen = []\n")
        .unwrap_err();
    assert!(err.contains("hygeine"), "{err}");
    let err = rules_with("[classifier]\nmin_scor = 2.0\n").unwrap_err();
    assert!(err.contains("min_scor"), "{err}");
    let err = rules_with("[classifier.sentiment.positive]\nfr = [\"bon\"]\n").unwrap_err();
    assert!(err.contains("fr"), "{err}");
}

#[test]
fn bad_keywords_name_their_key() {
    let rules = rules_with(
        "[classifier.categories.hygiene]\nen = [\"dirty\", \"grime\", \"mould\", \"  \"]\n",
    )
    .unwrap();
    assert_eq!(
        Classifier::new(&rules).unwrap_err(),
        "classifier.categories.hygiene.en[3]: empty keyword"
    );
    let rules = rules_with("[classifier.categories.noise]\nzh = [\"吵^x\"]\n").unwrap();
    let err = Classifier::new(&rules).unwrap_err();
    assert!(
        err.starts_with("classifier.categories.noise.zh[0]: bad weight"),
        "{err}"
    );
    let rules = rules_with("[classifier.negation]\nen = [\"not^2\"]\n").unwrap();
    let err = Classifier::new(&rules).unwrap_err();
    assert!(err.starts_with("classifier.negation.en[0]:"), "{err}");
    // The same keyword twice in one category (traditional and simplified fold together).
    let rules = rules_with("[classifier.categories.hygiene]\nzh = [\"乾淨\", \"干净\"]\n").unwrap();
    let err = Classifier::new(&rules).unwrap_err();
    assert!(
        err.starts_with("classifier.categories.hygiene.zh[1]: duplicate"),
        "{err}"
    );
    let rules = rules_with("[classifier]\nmin_score = 0\n").unwrap();
    assert!(
        Classifier::new(&rules)
            .unwrap_err()
            .starts_with("classifier.min_score")
    );
    let rules =
        rules_with("[classifier.categories.noise]\ndefault_sentiment = \"angry\"\n").unwrap();
    assert!(
        Classifier::new(&rules)
            .unwrap_err()
            .starts_with("classifier.categories.noise.default_sentiment")
    );
    let rules = rules_with("[classifier.categories.lost_property]\nen = [\"lo*st\"]\n").unwrap();
    assert!(
        Classifier::new(&rules)
            .unwrap_err()
            .starts_with("classifier.categories.lost_property.en[0]")
    );
}

#[test]
fn overriding_a_list_replaces_it() {
    let rules = rules_with("[classifier.categories.noise]\nen = [\"karaoke^3\"]\n").unwrap();
    assert_eq!(rules.categories.noise.en, vec!["karaoke^3".to_string()]);
    // The other noise list and the other categories keep their defaults.
    assert_eq!(
        rules.categories.noise.zh,
        ClassifierRules::defaults().categories.noise.zh
    );
    let c = Classifier::new(&rules).unwrap();
    assert_eq!(
        c.classify("karaoke next door", None).category,
        Category::Noise
    );
    assert_eq!(c.classify("so noisy", None).category, Category::Other);
}

#[test]
fn fold_converts_traditional_to_simplified() {
    // Traditional (Taiwan, Hong Kong) text → the simplified text the rules are written in.
    for (traditional, simplified) in [
        (
            "房間很髒，浴室有黴味，床單上還有頭髮",
            "房间很脏,浴室有霉味,床单上还有头发",
        ),
        ("櫃檯態度", "柜台态度"),
        (
            "冷氣壞掉了，打給櫃檯也沒人來修",
            "冷气坏掉了,打给柜台也没人来修",
        ),
        // Taiwan vocabulary, phrase by phrase (OpenCC's TWPhrases).
        (
            "房間的網路很慢，訊息也傳不出去",
            "房间的网络很慢,消息也传不出去",
        ),
        ("幫忙叫計程車，還提供了資訊", "帮忙叫出租车,还提供了信息"),
        ("電視螢幕有裂痕", "电视屏幕有裂痕"),
        ("我把隨身碟留在房間裡了", "我把u盘留在房间里了"),
        // The supplement (OpenCC's first candidates, 著→着); the tables' phrases still win.
        (
            "房間非常乾淨，吹風機吹不乾頭髮",
            "房间非常干净,吹风机吹不干头发",
        ),
        (
            "半夜樓上一直有人跑跳，完全睡不著",
            "半夜楼上一直有人跑跳,完全睡不着",
        ),
        // OpenCC writes 帳 as 帐 (the rules list 到账 and 到帐).
        ("關於退款，什麼時候會到帳？", "关于退款,什么时候会到帐?"),
        ("著名的飯店，乾坤大挪移", "著名的饭店,乾坤大挪移"),
        // Hong Kong forms.
        ("綫路又壞，啓動唔到", "线路又坏,启动唔到"),
        // Full width and case fold with it.
        ("ＷＩＦＩ訊號很差", "wifi信号很差"),
    ] {
        assert_eq!(fold::normalize(traditional), simplified, "{traditional}");
        // A keyword written in either script becomes the same needle.
        assert_eq!(fold::normalize(simplified), simplified, "{simplified}");
    }
}

#[test]
fn fold_leaves_simplified_text_alone() {
    // OpenCC's tables assume traditional input: on simplified text they would rewrite
    // 打坏→打坯, 行程→进程, 小程序→小进程, 文件→文档. A text without a traditional-only
    // character is not converted at all.
    for simplified in [
        "电视被打坏了,遥控器也没电",
        "行程安排得很好,前台帮忙订了车",
        "小程序上显示可以免费取消",
        "入住时要的文件都准备好了",
        "什么都没有,抬头一看天花板漏水",
        "早餐很丰富,干净卫生,服务周到,著名景点就在附近",
        "后面的房间里面只有一台电视",
    ] {
        assert_eq!(fold::normalize(simplified), simplified);
    }
    // Every simplified text of the tune set comes out as it went in (less case, width and
    // spaces, which normalise on their own).
    for line in include_str!("../../tests/data/labelled_tune.jsonl").lines() {
        let item: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if item["language"] != "zh-CN" {
            continue;
        }
        let text = item["text"].as_str().expect("a text");
        let mut plain = String::new();
        fold::push_normalized(text, &mut plain);
        assert_eq!(fold::normalize(text), plain, "{text}");
    }
}

#[test]
fn fold_normalises_width_case_and_space() {
    assert_eq!(fold::normalize("  Ｗｉ－Ｆｉ  很慢！ "), "wi fi 很慢!");
    assert_eq!(fold::normalize("Didn’t   WORK"), "didn't work");
    assert_eq!(fold::normalize("ÉTÉ\tCAFÉ_au—lait"), "été café au lait");
    assert_eq!(fold::normalize("房間　很髒。"), "房间 很脏.");
}

#[test]
fn fold_supplement_and_script_evidence() {
    // The supplement holds what zhconv's tables leave out; if a zhconv update adds one,
    // drop it from the supplement.
    let mapping = zhconv::ZhConverterBuilder::new()
        .tables(zhconv::get_builtin_tables(zhconv::Variant::ZhCN))
        .build_mapping();
    assert!(mapping.len() > 5000, "{}", mapping.len());
    for &(t, s) in fold::supplement_for_tests() {
        assert!(!mapping.contains_key(t), "{t} is in zhconv's table now");
        assert!(fold::is_cjk(t.chars().next().unwrap()) && s.chars().count() == 1);
    }
    // Evidence of script: what OpenCC's character tables always convert. The supplement's
    // characters (乾 著 於) also occur in simplified text, and 里 面 吃 are written alike in
    // both scripts: none of them is evidence.
    let counts = fold::script_counts("這裡的乾淨著名");
    assert_eq!(
        (counts.cjk, counts.traditional, counts.simplified),
        (7, 3, 0)
    );
    let counts = fold::script_counts("这里的面很好吃");
    assert_eq!(
        (counts.traditional, counts.simplified),
        (0, 1),
        "{counts:?}"
    );
    assert_eq!(detect_language("外面的小吃很好吃，價格也便宜"), "zh-TW");
    assert_eq!(detect_language("外面的小吃很好吃，价格也便宜"), "zh-CN");
}

#[test]
fn rules_reach_every_category() {
    let rules = ClassifierRules::defaults();
    for (cat, (_, key)) in category_list(&rules.categories).iter().zip(CATEGORIES) {
        assert!(!cat.zh.is_empty() && !cat.en.is_empty(), "{key}");
    }
}
