# A rehearse explore sweep as a Nomad parameterized batch job: one dispatch = one shard = one
# allocation. Each allocation runs `rehearse explore … --shard i/n --out FILE --resume` in the
# rehearse image (Dockerfile, built FROM scratch by deploy/image/build) and writes its shard
# file to the host volume "sweeps"; a rescheduled or restarted allocation resumes from it.
# When every shard is done, `rehearse merge` combines them (docs/sweeps.md).
#
#   nomad job run deploy/nomad/explore.nomad.hcl
#   for i in $(seq 1 16); do
#     nomad job dispatch -meta shard=$i -meta shards=16 -meta sweep=pairs-5 \
#       -meta plan=nomad-5-servers.toml -meta seeds=8 -meta sample=250000 explore
#   done
#   # on the host that holds the volume:
#   docker run --rm -v /srv/rehearse-sweeps:/sweeps --entrypoint /bin/rehearse rehearse:local \
#     merge /sweeps/pairs-5/shard-1.jsonl … --junit /sweeps/pairs-5/junit.xml --json-out /sweeps/pairs-5/merged.json
#
# The meta values below are the defaults a dispatch without -meta gets: a small sweep
# (tests/sweeps.rs runs the task's args with them). Every shard of one sweep must be dispatched with the same plan,
# seeds, sample and shards, or merge refuses the set.

job "explore" {
  type        = "batch"
  datacenters = ["*"]

  parameterized {
    meta_required = ["shard"]
    meta_optional = ["shards", "sweep", "plan", "seeds", "sample", "sample_seed"]
  }

  meta {
    shard       = "1"
    shards      = "4"
    sweep       = "pairs-5-servers"
    plan        = "nomad-5-servers.toml"
    seeds       = "2"
    sample      = "2000"
    sample_seed = "1"
  }

  group "shard" {
    count = 1

    # The host volume the client exposes (client config: host_volume "sweeps" { path = … }).
    volume "sweeps" {
      type   = "host"
      source = "sweeps"
    }

    # A shard that fails is retried in place, then rescheduled; --resume keeps finished units.
    restart {
      attempts = 2
      mode     = "fail"
    }
    reschedule {
      attempts  = 3
      unlimited = false
    }

    task "explore" {
      driver = "docker"

      config {
        image      = "rehearse:local"
        force_pull = false
        args = [
          "explore",
          "/plans/${NOMAD_META_plan}",
          "--faults",
          "2",
          "--seeds",
          "${NOMAD_META_seeds}",
          "--sample",
          "${NOMAD_META_sample}",
          "--sample-seed",
          "${NOMAD_META_sample_seed}",
          "--shard",
          "${NOMAD_META_shard}/${NOMAD_META_shards}",
          "--jobs",
          "2",
          "--shrink",
          "0",
          "--progress-every",
          "30",
          "--out",
          "/sweeps/${NOMAD_META_sweep}/shard-${NOMAD_META_shard}.jsonl",
          "--resume"
        ]
      }

      volume_mount {
        volume      = "sweeps"
        destination = "/sweeps"
      }

      # Two cores per shard: the explorer's threads (--jobs 2). Memory stays flat (results
      # are folded as they arrive); 20,000 pairs × 4 seeds peak below 100 MB.
      resources {
        cpu    = 4000
        memory = 256
      }

      # Exit 1 means the shard found an unsafe run: Nomad marks the allocation failed (a
      # signal worth having) and restarts it, which --resume makes a no-op that exits 1 again.
      # Exit 2 is bad input (a plan that does not parse, a shard file of another sweep).
    }
  }
}
