# The same tasks as `cargo xtask`, for those who have just.

# Install missing packages, then run every test (root for the lab tests)
test *ARGS:
    cargo xtask test {{ARGS}}

# rustfmt and clippy, as CI runs them
lint:
    cargo xtask lint

# Build and tear down the article topology and a 100-client subnet, against ip/nft scripts
bench:
    cargo xtask bench

# Install the Debian packages the build and the tests need
deps:
    cargo xtask deps

# The article's connect timeout, reproduced and checked (root)
demo:
    cargo xtask demo

# Capture fidelity beside tcpdump (root)
bench-capture:
    cargo xtask bench-capture

# The catalog 4-wide for 5 rounds and 32 connect-timeouts at once for 5 rounds: failures per scenario (root)
stress *ARGS:
    cargo xtask stress {{ARGS}}
