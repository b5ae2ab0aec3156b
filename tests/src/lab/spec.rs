//! What a lab is made of, before it runs: its clients ([`ClientSpec`]), what answers at
//! the VIP ([`Balancer`]), the EAP side ([`EapLab`]) and the certificates' key type
//! ([`CertKey`]), all in [`LabConfig`].

use std::path::PathBuf;

use crate::peers::EAP_PASSWORD;
use crate::peers::strongswan::CharonOptions;

/// Which IKE implementation a client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    StrongSwan,
    Libreswan,
}

/// Address family a client uses to reach the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One client namespace.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Unique, short (used in ids and file names).
    pub name: String,
    pub kind: ClientKind,
    pub family: Family,
    /// 500, or 4500 for IKE_SA_INIT with the non-ESP marker (strongSwan: local and remote
    /// port 4500; libreswan: `rightikeport=4500`).
    pub port: u16,
    /// Whether the client announces RFC 5685 support (N(REDIRECT_SUPPORTED) in its
    /// IKE_SA_INIT): strongSwan `follow_redirects`, libreswan `accept-redirect`. Default
    /// true; [`ClientSpec::without_redirect`] makes a client the fast path must not answer.
    pub redirect: bool,
    /// Authenticate by EAP (strongSwan only, in a [`LabConfig::eap`] lab).
    pub eap: Option<EapMethod>,
}

impl ClientSpec {
    pub fn new(name: &str, kind: ClientKind, family: Family, port: u16) -> Self {
        ClientSpec {
            name: name.into(),
            kind,
            family,
            port,
            redirect: true,
            eap: None,
        }
    }

    /// The same client authenticating by EAP with `method`.
    #[must_use]
    pub fn with_eap(mut self, method: EapMethod) -> Self {
        self.eap = Some(method);
        self
    }

    /// The same client without redirect support (strongSwan `follow_redirects = no`,
    /// libreswan `accept-redirect=no`).
    #[must_use]
    pub fn without_redirect(mut self) -> Self {
        self.redirect = false;
        self
    }

    /// strongSwan over IPv4 and IPv6, strongSwan to 4500, libreswan over IPv4 and IPv6.
    pub fn standard_set() -> Vec<ClientSpec> {
        use ClientKind::{Libreswan, StrongSwan};
        use Family::{V4, V6};
        vec![
            ClientSpec::new("sw4", StrongSwan, V4, 500),
            ClientSpec::new("sw6", StrongSwan, V6, 500),
            ClientSpec::new("sw4n", StrongSwan, V4, 4500),
            ClientSpec::new("ls4", Libreswan, V4, 500),
            ClientSpec::new("ls6", Libreswan, V6, 500),
        ]
    }

    /// The IKE identity the client uses (`<name>.client.ikelb.test`).
    pub fn id(&self) -> String {
        format!("{}.client.ikelb.test", self.name)
    }
}

/// What answers at the VIP.
#[derive(Clone, Debug)]
pub enum Balancer {
    /// The `ikelb` daemon: `run` with native XDP on the lb interface, and `attach-pass`
    /// on the bridge-side peer so XDP_TX frames are delivered.
    Ikelb {
        bin: PathBuf,
        /// `native`, `skb` or `auto`.
        xdp_mode: String,
    },
    /// The VRRP cluster: no static VIP owner; members `gw1..gw<candidates>` run `ikelb
    /// run` with VRRPv3 for the IPv4 VIP, the others `ikelb member`; every member reports
    /// its charon's IKE SAs (VICI) and the master redirects to the most headroom. IPv4
    /// clients only. See [`Lab::cluster_master`], [`Lab::kill_cluster_master`].
    IkelbCluster { bin: PathBuf, candidates: u8 },
    /// libreswan's `global-redirect` (the baseline), one pluto per family in use.
    LibreswanGlobalRedirect,
    /// Nothing: the VIP is only an address (clients' requests go unanswered).
    None,
}

impl Balancer {
    /// ikelb from `IKELB_BIN`, else `<workspace>/target/release/ikelb`, in native mode.
    pub fn ikelb_default() -> Self {
        Balancer::Ikelb {
            bin: ikelb_bin(),
            xdp_mode: "native".into(),
        }
    }
}

/// `IKELB_BIN`, else `<workspace>/target/release/ikelb`.
pub fn ikelb_bin() -> PathBuf {
    std::env::var_os("IKELB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_target().join("release/ikelb"))
}

/// Lab parameters.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// Number of members (`gw1..`), 1..=8.
    pub members: usize,
    pub clients: Vec<ClientSpec>,
    pub balancer: Balancer,
    /// Where configs and logs go; default: a fresh directory under the system temp dir
    /// (short paths: unix socket names are limited to 107 bytes).
    pub run_dir: Option<PathBuf>,
    /// Keep the run directory after teardown (it is always kept when dropping during a
    /// panic, or when `IKELB_TESTS_KEEP` is set).
    pub keep_run_dir: bool,
    /// charon settings for members and strongSwan clients.
    pub charon: CharonOptions,
    /// ikelb's VIPs redirect after authentication (`redirect = "auth"`) with this
    /// `auth-redirect` method, `"informational"` or `"ike_auth"`; ikelb authenticates the
    /// clients with the lab PSK as the members' identity and logs its IKE keys for
    /// tshark ([`Lab::ike_keylog_path`]). `None`: redirect in IKE_SA_INIT (the fast path).
    pub ikelb_auth: Option<String>,
    /// With [`LabConfig::ikelb_auth`]: everyone authenticates by certificate instead of
    /// the PSK, all of this key type. ikelb, the members (same identity `MEMBER_ID`) and
    /// the clients (their [`ClientSpec::id`] in the subjectAltName) get certificates of
    /// one CA that rcgen makes at lab start, under `<run_dir>/pki` ([`pki`]).
    pub ikelb_auth_cert: Option<CertKey>,
    /// Load-report interval of [`Balancer::IkelbCluster`] members, ms.
    pub cluster_report_ms: u64,
    /// RADIUS servers and EAP at ikelb and the members ([`eap`]); clients with
    /// [`ClientSpec::eap`] use it.
    pub eap: Option<EapLab>,
    /// ikelb's VIPs forward clients without REDIRECT_SUPPORTED to the members
    /// (`no-redirect = "forward"`, same L2); the members own the VIPs on `lo`.
    pub ikelb_forward: bool,
    /// With [`LabConfig::ikelb_forward`]: inside IP-in-IP (`forward-encap = "ipip"`),
    /// each member unwrapping with `ikelb member --decap` (docs/architecture.md §6.4).
    pub ikelb_forward_encap: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            members: 2,
            clients: Vec::new(),
            balancer: Balancer::None,
            run_dir: None,
            keep_run_dir: false,
            charon: CharonOptions::default(),
            ikelb_auth: None,
            ikelb_auth_cert: None,
            cluster_report_ms: 1000,
            eap: None,
            ikelb_forward: false,
            ikelb_forward_encap: false,
        }
    }
}

/// How a client authenticates by EAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EapMethod {
    /// EAP-MSCHAPv2 with this password (the servers know [`EAP_PASSWORD`]).
    MsChapV2 { password: String },
    /// EAP-TLS with the client's certificate of the lab CA.
    Tls,
}

impl EapMethod {
    /// MSCHAPv2 with the password the servers know.
    pub fn mschapv2() -> Self {
        EapMethod::MsChapV2 {
            password: EAP_PASSWORD.into(),
        }
    }
}

/// The RADIUS side of an EAP lab.
#[derive(Clone, Debug)]
pub struct EapLab {
    /// RADIUS servers `rad1..=radN`, in this order of preference for ikelb and members.
    pub servers: u8,
    /// Servers that are down (1-based): their namespace and address exist, and a socket
    /// on the RADIUS port takes requests without ever answering. Silent rather than
    /// refusing: strongSwan's eap-radius gives up at once on a port unreachable instead of
    /// trying its next server, and silence is the harder case for ikelb too.
    pub down: Vec<u8>,
    /// Servers that answer every request with a forgery (1-based): first a wrong
    /// Response Authenticator, then, knowing the secret, a right one over a wrong
    /// Message-Authenticator, alternately. ikelb must drop and count them.
    pub forged: Vec<u8>,
    /// ikelb's `[ike.radius]` `timeout-ms` and `retries`.
    pub timeout_ms: u64,
    pub retries: u32,
}

impl Default for EapLab {
    fn default() -> Self {
        EapLab {
            servers: 1,
            down: Vec::new(),
            forged: Vec::new(),
            timeout_ms: 1000,
            retries: 1,
        }
    }
}

impl EapLab {
    /// The longest ikelb waits for a verdict: every server, every try.
    pub fn worst_case(&self) -> std::time::Duration {
        let tries = u64::from(self.retries + 1) * u64::from(self.servers);
        std::time::Duration::from_millis(self.timeout_ms * tries)
    }
}

/// The key type of every certificate in the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKey {
    /// ECDSA P-256 (rcgen makes the keys).
    EcdsaP256,
    /// RSA 2048 (`openssl genpkey`: ring cannot make RSA keys).
    Rsa2048,
}

impl CertKey {
    /// libreswan's `authby=` for this key type.
    pub fn libreswan_authby(self) -> &'static str {
        match self {
            CertKey::EcdsaP256 => "ecdsa",
            CertKey::Rsa2048 => "rsasig",
        }
    }
}
