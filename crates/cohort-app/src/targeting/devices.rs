//! The device a user agent describes — browser, operating system, platform, bot —
//! parsed with ua-parser and the uap-core regexes (`data/uap-core/regexes.yaml`, as
//! released), compiled once per process, and cached per user-agent string (a site's
//! visitors use a few thousand distinct ones; a parse costs tens of microseconds).

use std::sync::{Arc, LazyLock};

use cohort_core::targeting::Platform;
use cohort_engine::targeting::Device;
use quick_cache::sync::Cache;
use ua_parser::{Extractor, Regexes};

/// uap-core's regexes, as released.
pub const UAP_CORE_REGEXES: &str = include_str!("../../data/uap-core/regexes.yaml");

/// Distinct user agents kept parsed.
const CACHED: usize = 20_000;
/// Longer user agents are parsed every time, so the cache stays small (real ones are
/// a few hundred bytes).
const CACHED_LENGTH: usize = 512;

static EXTRACTOR: LazyLock<Extractor<'static>> = LazyLock::new(|| {
    let regexes: Regexes<'static> = serde_norway::from_str(UAP_CORE_REGEXES).expect("uap-core regexes parse");
    Extractor::try_from(regexes).expect("uap-core regexes compile")
});

/// What ua-parser found in a user agent, as uap-core names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub browser: String,
    pub os: String,
    pub device: String,
    pub brand: Option<String>,
    pub model: Option<String>,
}

/// Parses a user agent with the uap-core regexes (uncached; `Other` where nothing
/// matched, as uap-core's test cases expect).
pub fn parse(user_agent: &str) -> Parsed {
    let (browser, os, device) = EXTRACTOR.extract(user_agent);
    let device = device.map(|d| d.into_owned());
    Parsed {
        browser: browser.map_or_else(|| "Other".to_owned(), |b| b.family.into_owned()),
        os: os.map_or_else(|| "Other".to_owned(), |o| o.os.into_owned()),
        brand: device.as_ref().and_then(|d| d.brand.clone()),
        model: device.as_ref().and_then(|d| d.model.clone()),
        device: device.map_or_else(|| "Other".to_owned(), |d| d.device),
    }
}

/// The device targeting sees: families in lower case, `Other` as unknown.
pub fn device(user_agent: &str) -> Device {
    let parsed = parse(user_agent);
    let known = |family: &str| (family != "Other").then(|| family.to_lowercase());
    Device {
        platform: platform(user_agent, &parsed),
        bot: parsed.device == "Spider",
        browser: known(&parsed.browser),
        os: known(&parsed.os),
    }
}

/// Tablet, phone or desktop: from the device family where uap-core names one, else
/// from the operating system and the `Mobile` / `Tablet` tokens browsers send.
fn platform(user_agent: &str, parsed: &Parsed) -> Platform {
    let device = parsed.device.to_ascii_lowercase();
    let ua = user_agent.to_ascii_lowercase();
    let tablet_family = [
        "ipad",
        "tablet",
        "kindle",
        "galaxy tab",
        "nexus 7",
        "nexus 9",
        "nexus 10",
        "playbook",
    ];
    if tablet_family.iter().any(|t| device.contains(t)) || ua.contains("tablet") || ua.contains("ipad") {
        return Platform::Tablet;
    }
    let os = parsed.os.as_str();
    if os == "Android" && !ua.contains("mobile") {
        return Platform::Tablet;
    }
    let mobile_os = [
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "KaiOS",
        "Symbian OS",
        "Firefox OS",
    ];
    if mobile_os.contains(&os) || device.contains("iphone") || ua.contains("mobi") {
        return Platform::Mobile;
    }
    Platform::Desktop
}

/// Parsed devices by user-agent string.
pub struct Devices {
    cache: Cache<String, Arc<Device>>,
}

impl Default for Devices {
    fn default() -> Self {
        Self::new()
    }
}

impl Devices {
    pub fn new() -> Self {
        Self {
            cache: Cache::new(CACHED),
        }
    }

    /// The device of a user agent, parsed at most once while it stays cached.
    pub fn parse(&self, user_agent: &str) -> Arc<Device> {
        if user_agent.len() > CACHED_LENGTH {
            return Arc::new(device(user_agent));
        }
        if let Some(device) = self.cache.get(user_agent) {
            return device;
        }
        let device = Arc::new(device(user_agent));
        self.cache.insert(user_agent.to_owned(), device.clone());
        device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_and_platforms() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "chrome",
                "windows",
                Platform::Desktop,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "mobile safari",
                "ios",
                Platform::Mobile,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
                "mobile safari",
                "ios",
                Platform::Tablet,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "chrome mobile",
                "android",
                Platform::Mobile,
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "chrome",
                "android",
                Platform::Tablet,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
                "firefox",
                "mac os x",
                Platform::Desktop,
            ),
        ];
        for (ua, browser, os, platform) in cases {
            let d = device(ua);
            assert_eq!(
                (d.browser.as_deref(), d.os.as_deref(), d.platform, d.bot),
                (Some(browser), Some(os), platform, false),
                "{ua}"
            );
        }
    }

    #[test]
    fn crawlers_are_bots_and_nothing_is_unknown() {
        let bot = device("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert!(bot.bot);
        let empty = device("");
        assert_eq!((empty.browser, empty.os, empty.bot), (None, None, false));
    }

    #[test]
    fn the_cache_returns_the_parsed_device() {
        let devices = Devices::new();
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        let first = devices.parse(ua);
        let second = devices.parse(ua);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.os.as_deref(), Some("linux"));
    }
}
