mod e2e_redirect;
mod fixtures;
mod peers;
