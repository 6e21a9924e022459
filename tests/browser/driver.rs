//! Debian's headless Chromium driven through chromedriver (WebDriver), one browser per test,
//! with a fresh profile. Missing binaries fail the test with instructions; nothing is skipped.

use std::{
    future::Future,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to appear (two shared cores, a browser and a server).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where test artifacts (screenshots) go: `target/artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("artifacts");
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    dir
}

fn executable(var: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "{} not found: the browser tests need Debian's `{package}` \
         (`apt-get install chromium chromium-driver`; .ci/run installs both), \
         or set {var} to its path",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// chromedriver (which ends the browsers it started) and the browser profile; both go away
/// on drop, also when a test panics.
struct Driver {
    process: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One Chromium session on its own chromedriver.
struct Browser {
    client: Client,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = executable("VOUCH_TEST_CHROMIUM", CHROMIUM, "chromium");
        let chromedriver = executable("VOUCH_TEST_CHROMEDRIVER", CHROMEDRIVER, "chromium-driver");
        let profile =
            std::env::temp_dir().join(format!("vouch-browser-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&profile).expect("browser profile dir");
        let port = free_port();
        let process = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let driver = Driver { process, profile };
        Browser {
            client: wait_for_session(port, &chromium, &driver.profile).await,
            _driver: driver,
        }
    }

    /// End the session (Chromium exits), then chromedriver.
    async fn shutdown(self) {
        let _ = self.client.clone().close().await;
    }
}

async fn wait_for_session(port: u16, chromium: &Path, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--force-device-scale-factor=1",
                // Readable on a laptop: test at a laptop's size.
                "--window-size=1366,900",
                "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!("capabilities are an object")
    };
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps.clone());
        match builder.connect(&url).await {
            Ok(client) => return client,
            Err(_) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                let log =
                    std::fs::read_to_string(profile.join("chromedriver.log")).unwrap_or_default();
                let tail = log.get(log.len().saturating_sub(3000)..).unwrap_or(&log);
                panic!(
                    "no WebDriver session from chromedriver on port {port} within {PATIENCE:?}: \
                     {e}\n--- chromedriver log (end):\n{tail}"
                )
            }
        }
    }
}

/// Run `body` with a fresh browser; the browser is shut down whatever happens, then a failure
/// in `body` fails the test.
pub async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let browser = Browser::start().await;
    let outcome = tokio::spawn(body(browser.client.clone())).await;
    browser.shutdown().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("browser test task failed: {e}"),
        }
    }
}

/// Save a screenshot of the page to `target/artifacts/<name>.png`; returns its path.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = artifacts_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// Fail with what the page shows (and a screenshot to look at).
async fn give_up(client: &Client, what: String) -> ! {
    let shot = screenshot(client, "failure").await;
    let body = match client.find(Locator::Css("main")).await {
        Ok(main) => main.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!(
        "{what}\n--- the page shows:\n{body}\n--- screenshot: {}",
        shot.display()
    );
}

/// The first element matching `css`, once there is one.
pub async fn element(client: &Client, css: &str) -> Element {
    match client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => give_up(client, format!("no element `{css}`: {e}")).await,
    }
}

/// Wait until the element at `css` shows text containing `needle`; returns its text.
pub async fn text_containing(client: &Client, css: &str, needle: &str) -> String {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < PATIENCE {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            if let Ok(text) = e.text().await {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    give_up(
        client,
        format!("`{css}` never showed {needle:?}; last text: {last:?}"),
    )
    .await
}

/// Type into the field at `css` (after clearing it).
pub async fn fill(client: &Client, css: &str, text: &str) {
    let e = element(client, css).await;
    e.clear().await.expect("clear field");
    e.send_keys(text).await.expect("type into field");
}

pub async fn click(client: &Client, css: &str) {
    element(client, css).await.click().await.expect("click");
}

/// Run a script in the page and return its result.
pub async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .expect("execute script")
}
