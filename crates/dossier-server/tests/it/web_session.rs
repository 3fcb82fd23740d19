//! The web UI's sign-in and sessions: passwords, rate limits, cookies, sign-out, CSRF and
//! origin checks, and where a sign-in may lead.

use dossier_domain::access::{Licence, Role};

use crate::spawn_app;
use crate::web_access::{first_story, status_of, tenancy};
use crate::web_client::{
    cookie_attributes, cookie_value, session_set_cookie, Csrf, Headers, WebSession,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_in_refuses_wrong_passwords_and_limits_attempts() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;

    let resp = app.login(&user, "wrong-password-123", None, &[]).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password."));
    let resp = app.login("nobody-here", &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    // Case and spaces in the name do not matter.
    let resp = app
        .login(&format!(" {} ", user.to_uppercase()), &password, None, &[])
        .await;
    assert_eq!(resp.status().as_u16(), 303);

    // Four failures, then the right password: still in.
    let (near, near_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for _ in 0..4 {
        let resp = app.login(&near, "not-the-password", None, &[]).await;
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = app.login(&near, &near_pw, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert!(session_set_cookie(resp.headers()).is_some());

    // Five failures: even the right password is refused, and no session is made.
    let (victim, victim_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for _ in 0..5 {
        let resp = app.login(&victim, "not-the-password", None, &[]).await;
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = app.login(&victim, &victim_pw, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    // The limit is per user name: others still sign in from the same address.
    let resp = app.login(&user, &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    // And per address: failing on purpose from elsewhere does not lock the user out.
    let elsewhere = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let resp = elsewhere
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", victim.as_str()),
            ("password", victim_pw.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        303,
        "the victim signs in from another address"
    );
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_session_cookie_and_redirects() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::Admin]).await;

    // Over plain HTTP: HttpOnly, SameSite=Lax, Path=/, and not Secure.
    let resp = app.login(&user, &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/stories")
    );
    let set = session_set_cookie(resp.headers()).unwrap();
    let attrs = cookie_attributes(&set);
    for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.iter().any(|a| a == want), "{want} in {set}");
    }
    assert!(
        !attrs.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{set}"
    );
    let value = cookie_value(&set);
    assert!(value.len() >= 43, "256 random bits: {value}");
    // Behind a TLS-terminating proxy: Secure as well.
    let resp = app
        .login(&user, &password, None, &[("X-Forwarded-Proto", "https")])
        .await;
    assert_eq!(resp.status().as_u16(), 303);
    let set_tls = session_set_cookie(resp.headers()).unwrap();
    let attrs = cookie_attributes(&set_tls);
    assert!(attrs.iter().any(|a| a == "Secure"), "{set_tls}");
    assert!(attrs.iter().any(|a| a == "HttpOnly"), "{set_tls}");
    assert_ne!(
        cookie_value(&set_tls),
        value,
        "each sign-in has its own session"
    );

    // The cookie opens the pages; none, or a forged one, leads to the sign-in.
    let web = WebSession::with_cookie(&app, &value);
    let resp = web.get_response("/stories").await;
    assert_eq!(resp.status().as_u16(), 200);
    // Signed-in pages are neither framed nor cached, and load nothing from elsewhere.
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(header("content-security-policy").contains("form-action 'self'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    assert!(resp.text().await.unwrap().contains(&user));
    let resp = crate::web_client::no_redirects()
        .get(format!("{}/stories", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303, "no cookie at all");
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/login?next=%2Fstories")
    );
    for cookie in ["", "forged-cookie-value"] {
        let mut anon = WebSession::with_cookie(&app, cookie);
        let (status, _, to) = anon.get_with_location("/stories").await;
        assert_eq!(status, 303);
        assert_eq!(to.as_deref(), Some("/login?next=%2Fstories"));
    }
    let resp = app
        .http
        .get(format!("{}/stories?status=open", app.base))
        .send()
        .await
        .unwrap();
    // reqwest follows the redirect to the sign-in page, which keeps where to go next.
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.url().path(), "/login");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("name=\"next\" value=\"/stories?status=open\""),
        "{page}"
    );

    // Where a sign-in may lead: only paths of this site.
    for (next, to) in [
        ("/events", "/events"),
        (
            "/stories?status=open&sort=-criticality",
            "/stories?status=open&sort=-criticality",
        ),
        ("//evil.example", "/stories"),
        ("//evil.example/stories", "/stories"),
        ("https://evil.example/", "/stories"),
        ("/\\evil.example", "/stories"),
        ("", "/stories"),
    ] {
        let resp = app.login(&user, &password, Some(next), &[]).await;
        assert_eq!(resp.status().as_u16(), 303, "next={next}");
        assert_eq!(
            crate::web_client::location(resp.headers()).as_deref(),
            Some(to),
            "next={next}"
        );
    }
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_out_ends_the_session() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let mut web = app.signed_in(Some(&account), &[Role::Admin]).await;
    let mut other = app.signed_in(Some(&account), &[Role::Admin]).await;
    let (status, _) = web.get("/stories").await;
    assert_eq!(status, 200);

    // Without the token, or with another session's, signing out is refused.
    let (status, _, _) = web.post_form_with("/logout", &[], Csrf::Missing, &[]).await;
    assert_eq!(status, 403);
    let other_token = other.csrf().await;
    let (status, _, _) = web
        .post_form_with("/logout", &[], Csrf::Value(&other_token), &[])
        .await;
    assert_eq!(status, 403);
    assert_eq!(web.get("/stories").await.0, 200, "still signed in");

    let token = web.csrf().await;
    let resp = web
        .http
        .post(format!("{}/logout", app.base))
        .header("cookie", format!("dossier_session={}", web.cookie))
        .form(&[("_csrf", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        crate::web_client::location(resp.headers()).as_deref(),
        Some("/login")
    );
    let cleared = session_set_cookie(resp.headers()).unwrap();
    assert_eq!(cookie_value(&cleared), "");
    assert!(
        cookie_attributes(&cleared).iter().any(|a| a == "Max-Age=0"),
        "{cleared}"
    );

    // The old cookie no longer opens anything, even if the browser kept it.
    let (status, _, to) = web.get_with_location("/stories").await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some("/login?next=%2Fstories"))
    );
    let (status, _, to) = web.post_form("/logout", &[]).await;
    assert_eq!(status, 303);
    assert!(to.unwrap().starts_with("/login"));
    // The other session is untouched.
    assert_eq!(other.get("/stories").await.0, 200);
    app.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_forms_need_the_session_token_and_this_site() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let mut web = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let mut other = app
        .signed_in(Some(&own.account), &[Role::StoriesEditor])
        .await;
    let (status, page) = web.get(&format!("/stories/{sid}")).await;
    assert_eq!(status, 200);
    let token = crate::web_client::csrf_of(&page).unwrap();
    let other_token = other.csrf().await;
    assert_ne!(token, other_token, "each session has its own token");
    let before = app.story(&own.key, &sid).await;
    assert_eq!(status_of(&before), "open");

    let path = format!("/stories/{sid}");
    let form = [("status", "monitoring"), ("verdict", ""), ("severity", "")];
    let mut wrong_token = token.clone();
    wrong_token.pop();
    wrong_token.push(if token.ends_with('A') { 'B' } else { 'A' });
    let evil_origin: Headers = &[("Origin", "http://evil.example")];
    let cross_site: Headers = &[("Sec-Fetch-Site", "cross-site")];
    let same_site: Headers = &[("Sec-Fetch-Site", "same-site")];
    let cases: [(&str, Csrf, Headers); 7] = [
        ("no token", Csrf::Missing, &[]),
        ("an empty token", Csrf::Value(""), &[]),
        ("a wrong token", Csrf::Value(&wrong_token), &[]),
        ("another session's token", Csrf::Value(&other_token), &[]),
        ("Origin: http://evil.example", Csrf::Session, evil_origin),
        ("Sec-Fetch-Site: cross-site", Csrf::Session, cross_site),
        ("Sec-Fetch-Site: same-site", Csrf::Session, same_site),
    ];
    for (what, csrf, headers) in cases {
        let (status, body, _) = web.post_form_with(&path, &form, csrf, headers).await;
        assert_eq!(status, 403, "{what}: {body}");
        let (status, _, _) = web
            .post_form_with(
                &format!("{path}/comments"),
                &[("text", "sneaky")],
                csrf,
                headers,
            )
            .await;
        assert_eq!(status, 403, "comment with {what}");
    }
    let after = app.story(&own.key, &sid).await;
    assert_eq!(status_of(&after), "open", "the story is unchanged");
    assert_eq!(after["timeline"], before["timeline"]);
    assert!(after["comments"].as_array().unwrap().is_empty());

    // The sign-in form is guarded too.
    let (user, password) = app.user(Some(&own.account), &[Role::StoriesViewer]).await;
    let resp = app.login(&user, &password, None, evil_origin).await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(session_set_cookie(resp.headers()).is_none());

    // The same form from this site, as a browser sends it: accepted.
    let origin = app.base.clone();
    let (status, _, to) = web
        .post_form_with(
            &path,
            &form,
            Csrf::Session,
            &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!((status, to), (303, Some(format!("{path}?saved=triage"))));
    assert_eq!(status_of(&app.story(&own.key, &sid).await), "monitoring");
    app.running.stop().await;
}

/// Browsers drop ASCII tabs and newlines from a URL before resolving it (WHATWG URL), so a
/// `next` of `/<TAB>/evil.example` is `//evil.example` to them: off-site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sign_in_never_leads_off_site_through_hidden_characters() {
    let app = spawn_app(1).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    let mut wrong = Vec::new();
    for next in [
        "/\t/evil.example",
        "/\t\t/evil.example/stories",
        "/\n/evil.example",
        "/\r\n/evil.example",
    ] {
        let resp = app.login(&user, &password, Some(next), &[]).await;
        let status = resp.status().as_u16();
        let to = crate::web_client::location(resp.headers()).unwrap_or_default();
        let as_browsers_read_it: String = to
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let on_site = as_browsers_read_it.starts_with('/')
            && !as_browsers_read_it.starts_with("//")
            && !as_browsers_read_it.starts_with("/\\");
        if status != 303 || !on_site {
            wrong.push(format!("next={next:?}: {status}, Location {to:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "sign-in leads off-site or fails:\n{}",
        wrong.join("\n")
    );
    app.running.stop().await;
}

/// A form sent after the session ended leads to the sign-in; once signed in, the user must land
/// on a page, not on a URL that only takes a POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_a_form_sent_after_the_session_ended_leads_back_to_a_page() {
    let app = spawn_app(5).await;
    let own = tenancy(&app, Licence::Xops).await;
    app.until_backfilled(&own.key, &own.connector, 5).await;
    let sid = first_story(&app, &own.key).await;
    let (user, password) = app.user(Some(&own.account), &[Role::StoriesEditor]).await;
    let mut web = WebSession::sign_in(&app, &user, &password).await;
    let token = web.csrf().await;
    let (status, _, _) = web.post_form("/logout", &[]).await;
    assert_eq!(status, 303);

    // The page was still open: its comment form is sent with the ended session.
    let (status, _, to) = web
        .post_form_with(
            &format!("/stories/{sid}/comments"),
            &[("text", "written before the session ended")],
            Csrf::Value(&token),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let to = to.unwrap();
    assert!(to.starts_with("/login?next="), "{to}");
    let next: String = url::form_urlencoded::parse(to.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let resp = app.login(&user, &password, Some(&next), &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    let landing = crate::web_client::location(resp.headers()).unwrap();
    let mut again = WebSession::sign_in(&app, &user, &password).await;
    let (status, _) = again.get(&landing).await;
    assert_eq!(
        status, 200,
        "after signing in again the user lands on {landing}, which answers {status}"
    );
    app.running.stop().await;
}
