# rehearse in a container, for sweeps on a batch engine (deploy/nomad/explore.nomad.hcl) or CI.
#
# Built FROM scratch: no registry is needed. The build context is staged by deploy/image/build:
# rootfs/ holds the rehearse binary, the shared libraries `ldd` lists for it (glibc, libm,
# libgcc_s and the loader), the plans and scenarios, and empty /tmp and /sweeps (mount a volume
# on /sweeps for shard outputs). No shell: the batch job runs rehearse itself.
#
#   deploy/image/build [BINARY] [TAG]        # default: target/release/rehearse, rehearse:local
#   docker run --rm -v "$PWD/out:/sweeps" rehearse:local \
#     explore /plans/nomad-5-servers.toml --faults 2 --sample 20000 --shard 1/4 --out /sweeps/1.jsonl
FROM scratch
COPY rootfs/ /
WORKDIR /
ENTRYPOINT ["/bin/rehearse"]
CMD ["--help"]
