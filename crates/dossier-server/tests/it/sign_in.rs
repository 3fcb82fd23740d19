//! The sign-in limiter (issue 27, item 3): made-up names cannot lock real users out behind
//! a shared address, the answer does not tell whether a name exists, and `X-Forwarded-For`
//! is read only from a trusted proxy.

use dossier_domain::access::{Licence, Role};

use crate::{spawn_app, spawn_app_with};

/// The page of a failed sign-in with the name it echoes taken out.
async fn answer(resp: reqwest::Response, name: &str) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap().replace(name, "NAME"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_names_from_one_address_leaves_a_real_user_signing_in_from_it() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    // More failures from this address than its limit on real names (100).
    for i in 0..150 {
        let name = format!("made-up-{i}");
        let resp = app.login(&name, "guess-guess-guess", None, &[]).await;
        assert_eq!(resp.status().as_u16(), 401, "{name}");
    }
    // Neither a real name with a wrong password nor a made-up one is told apart.
    let real = answer(
        app.login(&user, "guess-guess-guess", None, &[]).await,
        &user,
    )
    .await;
    let fake = answer(
        app.login("made-up-x", "guess-guess-guess", None, &[]).await,
        "made-up-x",
    )
    .await;
    assert_eq!(real, fake);
    assert_eq!(real.0, 401);
    assert!(real.1.contains("Wrong username or password."));
    let resp = app.login(&user, &password, None, &[]).await;
    assert_eq!(resp.status().as_u16(), 303, "the real user signs in");
    app.running.stop().await;
}

/// Failures on real names still count for the address: a spray over real names from one
/// address stops at the limit, for every name alike (so the stop says nothing of a name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spray_over_real_names_from_one_address_is_stopped_for_every_name_alike() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let mut users = Vec::new();
    for _ in 0..25 {
        users.push(app.user(Some(&account), &[Role::StoriesViewer]).await);
    }
    // 25 names × 4 failures: under each name's limit (5), at the address's (100).
    for round in 0..4 {
        for (u, _) in &users {
            let resp = app.login(u, "spray-spray-spray", None, &[]).await;
            assert_eq!(resp.status().as_u16(), 401, "{u} round {round}");
        }
    }
    let (u, p) = &users[0];
    assert_eq!(app.login(u, p, None, &[]).await.status().as_u16(), 429);
    let fake = app.login("made-up-y", "spray-spray", None, &[]).await;
    assert_eq!(fake.status().as_u16(), 429);
    app.running.stop().await;
}

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn login_from(
    app: &crate::App,
    client: &reqwest::Client,
    user: &str,
    password: &str,
    forwarded_for: &str,
) -> u16 {
    client
        .post(format!("{}/login", app.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let app = spawn_app_with(0, |c| {
        c.trusted_proxies =
            vec![dossier_server::client_addr::parse_trusted_proxy("127.0.0.1").unwrap()];
    })
    .await;
    let account = app.account(Licence::Xops).await;
    let proxy = client_from([127, 0, 0, 1]);
    let stranger = client_from([127, 0, 0, 2]);

    // Through the trusted proxy, each forwarded client has its own count: five failures for
    // one lock that name out for that client only.
    let (victim, victim_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for _ in 0..5 {
        let s = login_from(&app, &proxy, &victim, "wrong-wrong-wrong", "203.0.113.5").await;
        assert_eq!(s, 401);
    }
    let s = login_from(&app, &proxy, &victim, &victim_pw, "203.0.113.5").await;
    assert_eq!(s, 429, "the forwarded client that failed is held back");
    let s = login_from(&app, &proxy, &victim, &victim_pw, "203.0.113.6, 127.0.0.1").await;
    assert_eq!(s, 303, "another client behind the proxy signs in");

    // From a peer that is not a trusted proxy, the header is ignored: changing it does not
    // spread the failures over many addresses.
    let (other, other_pw) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    for i in 0..5 {
        let s = login_from(
            &app,
            &stranger,
            &other,
            "wrong-wrong-wrong",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_eq!(s, 401);
    }
    let s = login_from(&app, &stranger, &other, &other_pw, "198.51.100.99").await;
    assert_eq!(s, 429, "the stranger's own address is counted");
    app.running.stop().await;
}

/// Password checks run a bounded number at a time: with every permit taken, a sign-in waits
/// (it is not answered within the window), and it is answered once a permit is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_wait_for_a_free_permit() {
    let app = spawn_app(0).await;
    let account = app.account(Licence::Xops).await;
    let (user, password) = app.user(Some(&account), &[Role::StoriesViewer]).await;
    let checks = app.state.login_limiter.password_checks();
    let all = u32::try_from(checks.available_permits()).unwrap();
    let held = checks.acquire_many(all).await.unwrap();
    let base = app.base.clone();
    let attempt = tokio::spawn(async move {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{base}/login"))
            .form(&[("username", user.as_str()), ("password", password.as_str())])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let mut attempt = attempt;
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut attempt).await;
    assert!(early.is_err(), "a sign-in was checked with no permit free");
    drop(held);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), attempt)
        .await
        .expect("answered once a permit is free")
        .unwrap();
    assert_eq!(status, 303);
    app.running.stop().await;
}
