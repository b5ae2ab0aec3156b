//! `[[vip]] no-redirect`: what becomes of a client that does not send
//! N(REDIRECT_SUPPORTED) (docs/architecture.md §6).

use super::RedirectMode;

/// What a VIP does with an IKE_SA_INIT request without REDIRECT_SUPPORTED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoRedirect {
    /// Up to the local stack (init mode's behaviour before forwarding existed).
    #[default]
    Pass,
    /// The userspace responder answers NO_PROPOSAL_CHOSEN (auth mode).
    Refuse,
    /// Sent on unchanged, with every later packet of the client, to a member.
    Forward,
}

/// The setting of a VIP in `redirect` mode: the written one if it fits the mode, else
/// an error message. Unset, it is what the mode always did.
pub(super) fn parse(value: Option<&str>, redirect: RedirectMode) -> Result<NoRedirect, String> {
    let v = match value {
        None => {
            return Ok(match redirect {
                RedirectMode::Init => NoRedirect::Pass,
                RedirectMode::Auth => NoRedirect::Refuse,
            });
        }
        Some("pass") => NoRedirect::Pass,
        Some("refuse") => NoRedirect::Refuse,
        Some("forward") => NoRedirect::Forward,
        Some(o) => {
            return Err(format!(
                "`{o}`: expected \"forward\", \"pass\" or \"refuse\""
            ));
        }
    };
    match (redirect, v) {
        (RedirectMode::Init, NoRedirect::Pass | NoRedirect::Forward)
        | (RedirectMode::Auth, NoRedirect::Refuse) => Ok(v),
        // In auth mode every IKE message goes to the userspace responder, which refuses
        // what it cannot redirect; in init mode nothing in ikelb answers but the fast
        // path, which can pass or forward.
        (RedirectMode::Init, _) => Err("with redirect = \"init\": \"forward\" or \"pass\"".into()),
        (RedirectMode::Auth, _) => Err("with redirect = \"auth\": only \"refuse\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn defaults_and_combinations() {
        assert_eq!(parse(None, RedirectMode::Init), Ok(NoRedirect::Pass));
        assert_eq!(parse(None, RedirectMode::Auth), Ok(NoRedirect::Refuse));
        assert_eq!(
            parse(Some("forward"), RedirectMode::Init),
            Ok(NoRedirect::Forward)
        );
        assert!(parse(Some("forward"), RedirectMode::Auth).is_err());
        assert!(parse(Some("refuse"), RedirectMode::Init).is_err());
        assert!(parse(Some("drop"), RedirectMode::Init).is_err());
    }

    #[test]
    fn read_from_a_vip() {
        let c = Config::parse(
            "[[vip]]\naddress = \"192.0.2.1\"\nno-redirect = \"forward\"\n\
             [[target]]\nname = \"a\"\nidentity = \"192.0.2.11\"\n",
        )
        .unwrap();
        assert_eq!(c.vips[0].no_redirect, NoRedirect::Forward);
        let e = Config::parse("[[vip]]\naddress = \"192.0.2.1\"\nno-redirect = \"nope\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
