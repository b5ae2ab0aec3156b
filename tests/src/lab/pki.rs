//! The certificates of a certificate-authenticated lab ([`LabConfig::ikelb_auth_cert`]),
//! made with rcgen when the lab comes up: one CA, ikelb's certificate, one per member
//! with the same identity (subjectAltName `MEMBER_ID`: a redirected client checks the
//! same remote id at ikelb and at the member) and one per client (subjectAltName its
//! [`ClientSpec::id`]). Everything lies under `<run_dir>/pki/` as PEM (keys PKCS#8), plus
//! a password-less PKCS#12 per libreswan client for `pk12util`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SanType,
};

use super::addr::MEMBER_ID;
use super::spec::{CertKey, ClientKind, ClientSpec, LabConfig};
use crate::cmd;

/// A fresh key pair of type `kind`.
fn key_pair(kind: CertKey) -> Result<KeyPair> {
    match kind {
        CertKey::EcdsaP256 => Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?),
        CertKey::Rsa2048 => {
            let pem = cmd::run(&mut cmd::command(
                "openssl",
                [
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ],
            ))?;
            Ok(KeyPair::from_pkcs8_pem_and_sign_algo(
                &pem,
                &PKCS_RSA_SHA256,
            )?)
        }
    }
}

/// `<run_dir>/pki`.
pub fn pki_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("pki")
}

/// `<pki>/<name>.pem`: the certificate of `ca`, `ikelb`, `gw<i>` or a client name.
pub fn cert_path(pki: &Path, name: &str) -> PathBuf {
    pki.join(format!("{name}.pem"))
}

/// `<pki>/<name>.key`: its private key (PKCS#8 PEM).
pub fn key_path(pki: &Path, name: &str) -> PathBuf {
    pki.join(format!("{name}.key"))
}

/// `<pki>/<name>.p12`: certificate and key as PKCS#12, empty password.
pub fn p12_path(pki: &Path, name: &str) -> PathBuf {
    pki.join(format!("{name}.p12"))
}

/// The subject DN of the lab's end-entity certificates, as strongSwan writes it.
pub fn subject_dn(cn: &str) -> String {
    format!("C=CH, O=ikelb lab, CN={cn}")
}

/// Makes the CA and every certificate `config` needs under `pki`.
pub fn generate(pki: &Path, config: &LabConfig, kind: CertKey) -> Result<()> {
    std::fs::create_dir_all(pki).with_context(|| format!("mkdir {}", pki.display()))?;
    let ca_key = key_pair(kind)?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CountryName, "CH");
    p.distinguished_name
        .push(DnType::OrganizationName, "ikelb lab");
    p.distinguished_name
        .push(DnType::CommonName, "ikelb lab CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = p.self_signed(&ca_key)?;
    std::fs::write(cert_path(pki, "ca"), ca.pem())?;
    let leaf = |name: &str, id: &str| -> Result<()> {
        let key = key_pair(kind)?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CountryName, "CH");
        p.distinguished_name
            .push(DnType::OrganizationName, "ikelb lab");
        p.distinguished_name.push(DnType::CommonName, id);
        p.subject_alt_names = vec![SanType::DnsName(id.try_into()?)];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &ca, &ca_key)?;
        std::fs::write(cert_path(pki, name), cert.pem())?;
        std::fs::write(key_path(pki, name), key.serialize_pem())?;
        Ok(())
    };
    leaf("ikelb", MEMBER_ID)?;
    for i in 1..=config.members {
        leaf(&format!("gw{i}"), MEMBER_ID)?;
    }
    if config.eap.is_some() {
        // FreeRADIUS' certificate for EAP-TLS, for the members' identity: strongSwan's
        // EAP-TLS peer expects the EAP server to prove the gateway's IKE identity (a
        // separate `aaa_id` is a constraint it checks before EAP has run, and fails).
        // And the secret ikelb reads from a file.
        leaf("radius", MEMBER_ID)?;
        let secret = super::eap_config::secret_path(pki);
        std::fs::write(&secret, format!("{}\n", crate::peers::RADIUS_SECRET))?;
        // ikelb warns about secrets others can read.
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    for c in &config.clients {
        leaf(&c.name, &c.id())?;
        if c.kind == ClientKind::Libreswan {
            let mut o = Command::new("openssl");
            o.args(["pkcs12", "-export", "-passout", "pass:", "-name", &c.name])
                .arg("-in")
                .arg(cert_path(pki, &c.name))
                .arg("-inkey")
                .arg(key_path(pki, &c.name))
                .arg("-out")
                .arg(p12_path(pki, &c.name));
            cmd::run(&mut o)?;
        }
    }
    Ok(())
}

/// Copies `name`'s certificate, its key and the CA into a charon directory's `x509/`,
/// `private/` and `x509ca/` (swanctl loads them with `SWANCTL_DIR` = that directory).
pub fn install_for_charon(pki: &Path, name: &str, charon_dir: &Path) -> Result<()> {
    for (src, sub) in [
        (cert_path(pki, name), "x509"),
        (key_path(pki, name), "private"),
        (cert_path(pki, "ca"), "x509ca"),
    ] {
        let dir = charon_dir.join(sub);
        std::fs::create_dir_all(&dir)?;
        let file = src.file_name().context("file name")?;
        std::fs::copy(&src, dir.join(file))
            .with_context(|| format!("copy {} to {}", src.display(), dir.display()))?;
    }
    Ok(())
}

/// Creates a libreswan NSS db in `nss` (if absent) with the CA trusted for peers
/// (`CT,,`) and the client's certificate and key from its PKCS#12, nickname `name`.
pub fn install_for_pluto(pki: &Path, spec: &ClientSpec, nss: &Path) -> Result<()> {
    let db = format!("sql:{}", nss.display());
    if !nss.join("cert9.db").exists() {
        std::fs::create_dir_all(nss)?;
        let mut n = cmd::command("certutil", ["-N", "-d", &db, "--empty-password"]);
        cmd::run(&mut n)?;
    }
    let mut ca = cmd::command("certutil", ["-A", "-d", &db, "-n", "ikelb-lab-ca", "-t"]);
    ca.arg("CT,,").arg("-a").arg("-i").arg(cert_path(pki, "ca"));
    cmd::run(&mut ca)?;
    let mut p12 = cmd::command("pk12util", ["-d", &db, "-W", "", "-i"]);
    p12.arg(p12_path(pki, &spec.name));
    cmd::run(&mut p12)?;
    Ok(())
}
