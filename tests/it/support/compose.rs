//! A Compose project for the Docker tests: brought up from one of compose/'s files with its
//! own name, ports and image tags, and taken down with its volumes and images when dropped,
//! whatever the test did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A port nothing listens on right now, for a container to publish.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs compose/build-local-images.sh with `env`; the images it prints are built.
pub fn build_images(env: &[(&str, &str)]) {
    let build = Command::new(root().join("compose/build-local-images.sh"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "building images: {}",
        String::from_utf8_lossy(&build.stderr)
    );
}

pub struct ComposeProject {
    pub name: String,
    file: PathBuf,
    env: Vec<(String, String)>,
    /// Removed with the project.
    images: Vec<String>,
}

impl ComposeProject {
    /// `docker-compose -p NAME -f compose/FILE up -d` with `env`; fails the test if it fails.
    pub fn up(name: &str, file: &str, env: Vec<(String, String)>, images: Vec<String>) -> Self {
        let project = Self {
            name: name.to_string(),
            file: root().join("compose").join(file),
            env,
            images,
        };
        let out = project.compose(&["up", "-d"]);
        assert!(
            out.status.success(),
            "compose up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        project
    }

    pub fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .args(["-p", &self.name, "-f", self.file.to_str().unwrap()])
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .expect("docker-compose is installed (Debian's package)")
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans"]);
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}
