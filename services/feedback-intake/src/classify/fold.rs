//! Text normalisation shared by the rules and the text: a small built-in
//! traditional→simplified character fold, full-width→ASCII, lower case, and
//! whitespace/hyphen collapsing.
//!
//! The fold is character-for-character (no phrase conversion, no OpenCC): it covers the
//! traditional characters that hotel feedback actually uses (room, service, food, money,
//! complaint vocabulary; about 650 characters). Folding both the rules and the text means
//! every Chinese keyword is written once, in simplified script, and still matches
//! traditional text; Taiwan and Hong Kong *vocabulary* (冷氣, 網路, 櫃檯, CP值, 嘈) is a
//! separate matter and is listed in the rules in its folded form (冷气, 网路, 柜台).

use std::sync::OnceLock;

/// Traditional→simplified pairs, two characters each, separated by spaces. Keys are
/// traditional-only characters; values are their simplified forms. No key is also a value.
const PAIRS: &str = "\
這这 個个 們们 來来 時时 會会 說说 對对 還还 沒没 為为 點点 樣样 麼么 麽么 裡里 裏里 後后 \
過过 開开 關关 門门 問问 間间 聽听 見见 覺觉 現现 與与 從从 讓让 給给 當当 應应 該该 頭头 \
麗丽 實实 際际 經经 歡欢 樂乐 嗎吗 種种 類类 幾几 並并 於于 將将 兒儿 邊边 著着 處处 場场 \
東东 車车 買买 賣卖 錢钱 貴贵 價价 費费 帳账 賬账 單单 據据 發发 稅税 額额 錯错 誤误 資资 \
訊讯 訂订 預预 認认 確确 約约 銷销 結结 換换 務务 員员 櫃柜 檯台 臺台 態态 禮礼 親亲 專专 \
業业 責责 題题 變变 謝谢 惡恶 爛烂 極极 夠够 讚赞 贊赞 滿满 願愿 議议 請请 託托 幫帮 煩烦 \
馬马 廁厕 衛卫 潔洁 漬渍 黴霉 異异 蟲虫 蝨虱 髮发 鬚须 塵尘 壞坏 損损 維维 備备 設设 舊旧 \
斷断 響响 聲声 靜静 鬧闹 樓楼 層层 機机 壓压 燒烧 壺壶 鍋锅 飯饭 廳厅 麵面 湯汤 魚鱼 雞鸡 \
鴨鸭 豬猪 蝦虾 餅饼 飲饮 紅红 綠绿 鹹咸 燉炖 涼凉 鮮鲜 膩腻 嚐尝 嘗尝 滷卤 豐丰 質质 選选 \
擇择 補补 貨货 調调 師师 廚厨 館馆 體体 驗验 鎖锁 鑰钥 簾帘 紙纸 牆墙 鏡镜 錶表 鐘钟 鍾钟 \
週周 帶带 護护 證证 遺遗 撿捡 達达 賠赔 償偿 醫医 藥药 傷伤 負负 擔担 賴赖 訴诉 檢检 監监 \
閱阅 聯联 繫系 係系 絡络 郵邮 傳传 號号 碼码 網网 頁页 區区 圖图 標标 準准 氣气 溫温 熱热 \
風风 乾干 幹干 濕湿 條条 張张 雙双 舖铺 鋪铺 牀床 墊垫 軟软 適适 陽阳 觀观 園园 環环 優优 \
裝装 計计 華华 亂乱 擠挤 髒脏 臟脏 噁恶 難难 聞闻 煙烟 菸烟 嗆呛 離离 遠远 運运 輛辆 級级 \
團团 隊队 總总 領领 導导 辦办 續续 遲迟 詢询 諮咨 顯显 寫写 談谈 講讲 語语 兇凶 討讨 厭厌 \
憤愤 貼贴 動动 腦脑 筆笔 記记 錄录 貓猫 寵宠 嬰婴 孫孙 爺爷 媽妈 盡尽 儘尽 歲岁 慶庆 紀纪 \
驚惊 訝讶 嚇吓 擾扰 睏困 夢梦 轟轰 鑽钻 築筑 鄰邻 淩凌 癢痒 腫肿 濃浓 淺浅 燙烫 縮缩 襪袜 \
褲裤 襯衬 鈕钮 頂顶 蓋盖 積积 兌兑 廣广 濾滤 節节 憑凭 權权 義义 協协 懷怀 竊窃 盜盗 賊贼 \
報报 頓顿 飽饱 餓饿 喚唤 囉啰 讀读 書书 畫画 顏颜 藍蓝 黃黄 銀银 鏈链 項项 飾饰 夾夹 輪轮 \
擋挡 駕驾 駛驶 賓宾 遊游 戲戏 齊齐 強强 愛爱 戀恋 惱恼 遜逊 薦荐 誠诚 懇恳 謹谨 細细 魯鲁 \
漠漠 諉诿 閒闲 臉脸 決决 緊紧 嚴严 險险 憂忧 慮虑 龍龙 嘩哗 沖冲 衝冲 暢畅 漲涨 餘余 統统 \
編编 嚮向 遙遥 頻频 屜屉 櫥橱 觸触 閘闸 簡简 規规 則则 須须 簽签 購购 掃扫 遞递 丟丢 歸归 \
尋寻 鐵铁 飛飞 轉转 覆复 複复 復复 撥拨 鈴铃 漿浆 饅馒 餃饺 腸肠 醬酱 鹽盐 澀涩 餿馊 蒼苍 \
蠅蝇 喫吃 餚肴 盤盘 歐欧 臘腊 兩两 隻只 萬万 億亿 塊块 圓圆 興兴 嘆叹 歎叹 豔艳 艷艳 輕轻 \
鬆松 棄弃 寬宽 擁拥 狹狭 陰阴 霧雾 濛蒙 夥伙 齣出 醜丑 歷历 曆历 範范 製制 雲云 穀谷 瞭了 \
鄉乡 鎮镇 縣县 灣湾 蠟蜡 燭烛 閃闪 爾尔 鬥斗 塗涂 滅灭 燈灯 視视 電电 線线 話话 無无 \
連连 門门 鑑鉴 鑒鉴 靈灵 幣币 紗纱 絨绒 綿绵 織织 紋纹 絲丝 剛刚 貨货 貓猫 騙骗 詐诈 罰罚 \
攝摄 廂厢 廊廊 噸吨 勁劲 勞劳 務务 滯滞 態态 緩缓 慣惯 鬍胡 蓮莲 蓬蓬 孔孔 龜龟 頸颈 \
膚肤 顧顾 額额 類类 賺赚 賤贱 貸贷 贈赠 賞赏 質质 購购 讓让 雜杂 雞鸡 難难 離离 順顺 \
須须 預预 領领 頭头 顆颗 題题 願愿 飄飘 驅驱 驗验 鬱郁 麥麦 黨党 齒齿 頻频 壺壶 緻致 \
綁绑 給给 絕绝 統统 絡络 網网 緒绪 線线 練练 縫缝 總总 績绩 繳缴 繩绳 纜缆 罷罢 聖圣 \
聞闻 聲声 職职 聽听 肅肃 脅胁 腳脚 膠胶 艙舱 蘭兰 處处 號号 蝕蚀 衛卫 補补 裝装 製制 \
覽览 觀观 訓训 託托 記记 訪访 設设 許许 診诊 註注 詞词 試试 詳详 語语 誤误 說说 課课 \
誰谁 調调 談谈 請请 論论 諾诺 謂谓 講讲 證证 識识 警警 議议 護护 讀读 變变 讓让 豎竖 \
豬猪 貝贝 負负 財财 貧贫 貨货 販贩 責责 貴贵 買买 費费 貼贴 資资 賓宾 賠赔 賣卖 質质 \
購购 贏赢 趕赶 趨趋 跡迹 踐践 蹤踪 躍跃 軌轨 軍军 載载 較较 輔辅 輸输 辭辞 農农 邁迈 \
郵邮 鄭郑 醞酝 釋释 針针 釣钓 鈔钞 鉤钩 銷销 鋼钢 錄录 鍵键 鎖锁 鏟铲 鐘钟 鑰钥 長长 \
閉闭 閒闲 閱阅 闆板 隊队 階阶 際际 隨随 險险 隱隐 雖虽 雙双 雛雏 雜杂 難难 電电 靜静 \
韓韩 頁页 項项 須须 顯显 風风 颱台 飛飞 餐餐 館馆 饞馋 駐驻 騰腾 驚惊 髒脏 鬧闹 魷鱿 \
鮑鲍 鯊鲨 鰻鳗 鱈鳕 鳥鸟 鴿鸽 鵝鹅 鹽盐 麗丽 麼么 黴霉 齡龄 龍龙 瑣琐 瑤瑶 氣气 湧涌 \
溝沟 滬沪 滾滚 漁渔 漢汉 潤润 澆浇 濟济 濱滨 瀏浏 灑洒 災灾 爐炉 爭争 牽牵 獎奖 獨独 \
獲获 現现 環环 產产 畢毕 當当 疊叠 療疗 癒愈 發发 盜盗 盞盏 監监 盡尽 睜睁 矯矫 礎础 \
禍祸 禦御 稱称 穩稳 窩窝 窮穷 竄窜 競竞 筆笔 簡简 籃篮 籠笼 糧粮 糾纠 紀纪 約约 紅红 \
紙纸 級级 細细 終终 組组 結结 絕绝 經经 綜综 緊紧 維维 緣缘 編编 縮缩 繁繁 織织 續续 \
纏缠 罐罐 義义 習习 翹翘 聯联 腦脑 臉脸 臨临 舉举 艦舰 蘇苏 藝艺 螢萤 蟬蝉 襯衬 觸触 \
搶抢 擋挡 據据 擠挤 擦擦 擴扩 擺摆 擾扰 攔拦 攤摊 攪搅 敗败 敵敌 數数 斂敛 斬斩 \
暈晕 暫暂 曬晒 書书 會会 東东 條条 棟栋 楓枫 榮荣 構构 槍枪 樂乐 標标 樞枢 樣样 樹树 \
橋桥 機机 檔档 檢检 櫻樱 權权 歡欢 歲岁 歸归 殘残 殺杀 殼壳 毀毁 氈毡 沒没 淚泪 淨净 \
淺浅 減减 渦涡 測测 溫温 準准 溼湿 滅灭 滷卤 滿满 漏漏 漲涨 潔洁 潛潜 澀涩 濃浓 濕湿 \
瀉泻 灣湾 烏乌 無无 煉炼 煩烦 熱热 燈灯 燒烧 燙烫 營营 爛烂 墻墙 壇坛 壓压 壞坏 壯壮 \
夥伙 奪夺 奮奋 奧奥 婦妇 媽妈 嫵妩 學学 實实 寧宁 審审 寫写 寶宝 將将 專专 尋寻 對对 \
導导 層层 屬属 嶺岭 帥帅 師师 帳账 幫帮 廟庙 廢废 廣广 廳厅 彈弹 彎弯 徑径 從从 復复 \
徹彻 恆恒 惡恶 惱恼 愛爱 愜惬 慣惯 慘惨 慶庆 憂忧 憐怜 應应 懶懒 懷怀 戰战 戲戏 戶户 \
掛挂 採采 揚扬 換换 損损 搖摇 搬搬 攜携 佈布 併并 侶侣 係系 俠侠 倆俩 倉仓 個个 們们 \
倫伦 偉伟 側侧 偵侦 傑杰 傘伞 備备 傢家 傭佣 傳传 債债 傷伤 傾倾 僅仅 僑侨 價价 儀仪 \
億亿 儲储 優优 兒儿 內内 兩两 冊册 凍冻 劃划 劇剧 劑剂 勁劲 動动 務务 勝胜 勢势 勵励 \
勸劝 區区 協协 卻却 厲厉 厭厌 參参 叢丛 吳吴 啟启 喪丧 單单 嚴严 囑嘱 團团 園园 圍围 \
圖图 圓圆 執执 堅坚 報报 場场 塊块 塵尘 塢坞 墊垫 墳坟 蝨虱 鴛鸳 鴦鸯 顛颠 顫颤 鬥斗 \
";

/// Traditional characters in the table that also occur in ordinary simplified text
/// (著名, 乾坤, 覆盖, 瞭望); they fold but do not count as evidence of traditional
/// script when detecting zh-TW.
const AMBIGUOUS_TRADITIONAL: &str = "著乾覆瞭";

/// Folded (simplified) forms that are also ordinary traditional characters (后, 台, 里 …);
/// they do not count as evidence of simplified script.
const SHARED_SIMPLIFIED: &str =
    "后台干里面只系制范冲丑出了松云谷周余向凶吃几表才准托困咸游蒙床肴伙家布并致采挂板胡郁复";

struct Tables {
    /// Sorted by traditional character; binary-searched.
    fold: Vec<(char, char)>,
    /// Simplified-only characters (fold values not in [`SHARED_SIMPLIFIED`]), sorted.
    simplified_only: Vec<char>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut fold: Vec<(char, char)> = PAIRS
            .split_whitespace()
            .filter_map(|pair| {
                let mut chars = pair.chars();
                let (t, s) = (chars.next()?, chars.next()?);
                // Identity pairs (a character written the same in both scripts) are
                // harmless in the source list but carry no information.
                (t != s).then_some((t, s))
            })
            .collect();
        fold.sort_unstable();
        fold.dedup();
        let mut simplified_only: Vec<char> = fold
            .iter()
            .map(|&(_, s)| s)
            .filter(|s| !SHARED_SIMPLIFIED.contains(*s))
            .collect();
        simplified_only.sort_unstable();
        simplified_only.dedup();
        Tables {
            fold,
            simplified_only,
        }
    })
}

/// The simplified form of `c` if it is a traditional character in the table.
pub(crate) fn fold_char(c: char) -> Option<char> {
    if (c as u32) < 0x3400 {
        return None;
    }
    let fold = &tables().fold;
    fold.binary_search_by_key(&c, |&(t, _)| t)
        .ok()
        .map(|i| fold[i].1)
}

/// A CJK ideograph (the blocks Chinese feedback uses).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A character that continues a Latin-script word: ASCII letters and digits and other
/// alphabetic characters below the CJK blocks (é, ü …). CJK, punctuation, spaces and
/// apostrophes end a word, so "restaurant's" contains the word "restaurant" and an English
/// keyword matches inside Chinese text ("房间wifi很慢").
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || (!c.is_ascii() && (c as u32) < 0x2E80 && c.is_alphabetic())
}

/// Characters that end a clause: negation and intensifiers do not reach across them.
pub(crate) fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '!' | '?' | ';' | ':' | '\n' | '、' | '。' | '…' | '~' | '(' | ')'
    )
}

/// Normalises `text` into `out` (cleared first): NFKC-like full-width→ASCII, curly quotes
/// to `'`, hyphens/dashes/underscores and any whitespace run to one space, lower case,
/// traditional→simplified fold, leading/trailing space trimmed. Full-width Chinese
/// punctuation (，。！？；：) becomes its ASCII form.
pub(crate) fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    let mut pending_space = false;
    for raw in text.chars() {
        let c = match raw as u32 {
            0xFF01..=0xFF5E => char::from_u32(raw as u32 - 0xFEE0).unwrap_or(raw),
            0x3000 => ' ',
            _ => raw,
        };
        let c = match c {
            '\u{2018}' | '\u{2019}' | '`' | '\u{00B4}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            '-' | '_' | '\u{2010}'..='\u{2015}' => ' ',
            '\u{3002}' => '.',
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if let Some(s) = fold_char(c) {
            out.push(s);
        } else if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
}

pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

/// Script evidence in raw (unfolded) text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScriptCounts {
    pub cjk: usize,
    pub latin_letters: usize,
    pub traditional: usize,
    pub simplified: usize,
}

pub(crate) fn script_counts(text: &str) -> ScriptCounts {
    let t = tables();
    let mut counts = ScriptCounts::default();
    for c in text.chars() {
        if is_cjk(c) {
            counts.cjk += 1;
            if fold_char(c).is_some() && !AMBIGUOUS_TRADITIONAL.contains(c) {
                counts.traditional += 1;
            } else if t.simplified_only.binary_search(&c).is_ok() {
                counts.simplified += 1;
            }
        } else if c.is_alphabetic() && (c as u32) < 0x2E80 {
            counts.latin_letters += 1;
        }
    }
    counts
}

#[cfg(test)]
pub(crate) fn table_for_tests() -> &'static [(char, char)] {
    &tables().fold
}
