//! Messages in the person's language: the request's `locale` negotiated against the languages
//! Vouch has (best match, else English), carried with the queued message, and written into
//! the email (subject, parts, `Content-Language`) and the SMS as they reach the providers.

use super::*;

impl Rig {
    async fn send_in(&self, account: &str, channel: &str, to: &str, locale: &str) -> Value {
        let res = self
            .app
            .post(
                &format!("/v1/accounts/{account}/verifications"),
                &self.app.backend_key,
                &json!({"channel": channel, "to": to, "locale": locale}),
            )
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The email a verification in `locale` sends, once it has arrived, and the
    /// verification's id.
    async fn email_in(&self, account: &str, locale: &str) -> (crate::fakes::Mail, String) {
        let before = self.smtp.mails().len();
        let created = self
            .send_in(
                account,
                "email",
                &format!("ana.{locale}@example.org"),
                locale,
            )
            .await;
        let vid = created["id"].as_str().unwrap().to_owned();
        (self.smtp.nth(before + 1).await, vid)
    }
}

#[tokio::test]
async fn a_german_email_has_a_german_subject_body_and_content_language() {
    let rig = rig().await;
    let account = rig.app.account("user-de").await;
    let (mail, vid) = rig.email_in(&account, "de").await;

    assert_eq!(mail.subject(), "Ihr Bestätigungscode für Vouch");
    assert_eq!(mail.header("Content-Language").as_deref(), Some("de"));
    let text = mail.text();
    let code = mail.code();
    assert!(
        text.contains(&format!("Ihr Bestätigungscode für Vouch lautet: {code}")),
        "{text}"
    );
    assert!(text.contains("Er ist 30 Minuten lang gültig."), "{text}");
    let html = mail.html();
    assert!(html.contains(r#"<html lang="de" dir="ltr">"#), "{html}");
    assert!(html.contains(&code) && html.contains("Geben Sie den Code niemals weiter"));
    // The code from the German email approves the verification like any other.
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
}

#[tokio::test]
async fn regional_and_unknown_tags_fall_back_along_the_chain() {
    let rig = rig().await;
    let account = rig.app.account("user-langs").await;
    for (requested, language, subject) in [
        ("pt-BR", "pt-BR", "Seu código de verificação do Vouch"),
        ("pt", "pt-BR", "Seu código de verificação do Vouch"),
        ("de-AT", "de", "Ihr Bestätigungscode für Vouch"),
        ("ja-JP", "ja", "Vouch の認証コード"),
        ("xx", "en", "Your Vouch verification code"),
        ("en-US-x-private", "en", "Your Vouch verification code"),
    ] {
        let (mail, _) = rig.email_in(&account, requested).await;
        assert_eq!(mail.subject(), subject, "{requested}");
        assert_eq!(
            mail.header("Content-Language").as_deref(),
            Some(language),
            "{requested}"
        );
        let code = mail.code();
        assert!(mail.text().contains(&code), "{requested}");
        rig.outbox_idle().await;
    }
}

#[tokio::test]
async fn an_arabic_email_reads_right_to_left() {
    let rig = rig().await;
    let account = rig.app.account("user-ar").await;
    let (mail, _) = rig.email_in(&account, "ar-EG").await;
    assert_eq!(mail.subject(), "رمز التحقق الخاص بك من Vouch");
    assert_eq!(mail.header("Content-Language").as_deref(), Some("ar"));
    let html = mail.html();
    assert!(html.contains(r#"<html lang="ar" dir="rtl">"#), "{html}");
    assert!(
        html.contains(&format!("<bdi>{}</bdi>", mail.code())),
        "{html}"
    );
}

#[tokio::test]
async fn the_sms_provider_receives_the_localized_body() {
    let rig = rig_with(|s| s.delivery.service_name = "Acme Secure Meetings".into()).await;
    let account = rig.app.account("user-sms-fr").await;
    rig.send_in(&account, "sms", PHONE, "fr-CA").await;
    let sms = rig.twilio.nth(1).await;
    let body = sms.field("Body").unwrap().to_owned();
    let code = sms.code();
    assert_eq!(
        body,
        format!(
            "Votre code de vérification Acme Secure Meetings est : {code}. Il expire dans 10 \
             minutes. Ne le donnez à personne ; nous ne vous le demanderons jamais."
        )
    );

    rig.outbox_idle().await;
    rig.send_in(&account, "sms", PHONE, "ja").await;
    let ja = rig.twilio.nth(2).await;
    let body = ja.field("Body").unwrap();
    assert!(
        body.starts_with(&format!("Acme Secure Meetings認証コード：{}", ja.code())),
        "{body}"
    );
    assert!(body.encode_utf16().count() <= 70, "{body}");
}

#[tokio::test]
async fn without_a_locale_messages_are_english() {
    let rig = rig().await;
    let account = rig.app.account("user-en").await;
    rig.send_ok(&account, "sms", PHONE).await;
    let sms = rig.twilio.nth(1).await;
    let code = sms.code();
    assert_eq!(
        sms.field("Body"),
        Some(
            format!(
                "Your Vouch verification code is: {code}. It expires in 10 minutes. Don't share \
                 it with anyone; we will never ask you for it."
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn a_malformed_locale_is_refused_and_nothing_is_queued() {
    let rig = rig().await;
    let account = rig.app.account("user-bad-locale").await;
    for locale in [
        "",
        "de_DE",
        "x",
        "deutsch-sprache-ohne-ende-und-mehr-x",
        "de--AT",
    ] {
        let res = rig
            .app
            .post(
                &format!("/v1/accounts/{account}/verifications"),
                &rig.app.backend_key,
                &json!({"channel": "email", "to": "ana@example.org", "locale": locale}),
            )
            .await;
        assert_problem(res, 400, "invalid_locale").await;
    }
    use sea_orm::PaginatorTrait;
    let queued = outbox_message::Entity::find()
        .count(&rig.app.db().await)
        .await
        .unwrap();
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn the_language_travels_with_the_queued_message_through_retries() {
    let rig = rig_with(slow_retries).await;
    rig.smtp.set_down(true);
    let account = rig.app.account("user-es-retry").await;
    let vid = rig
        .send_in(&account, "email", "ana@example.org", "es-MX")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("a failed attempt", Duration::from_secs(15), || async {
        outbox(&rig.app, &vid)
            .await
            .filter(|m| m.status == "pending" && m.attempts == 1)
    })
    .await;
    rig.smtp.set_down(false);
    rig.app.clock.advance(chrono::Duration::seconds(73));
    let mail = rig.smtp.nth(1).await;
    assert_eq!(mail.subject(), "Tu código de verificación de Vouch");
    assert_eq!(mail.header("Content-Language").as_deref(), Some("es"));
    let delivered = rig.wait_delivery(&vid, "delivered").await;
    assert_eq!(
        delivered.payload_sealed, None,
        "the language is erased with the rest"
    );
}
