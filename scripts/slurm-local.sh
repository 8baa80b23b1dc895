#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the launcher tests: munged, slurmctld and
# slurmd from Debian's `slurm-wlm` and `munge`, a minimal slurm.conf (proctrack/linuxproc,
# task/none, the node line from `slurmd -C`). Idempotent; `stop` ends what `start` started.
#
#   scripts/slurm-local.sh start|stop|status
#
# Needs root (it writes /etc/slurm/slurm.conf and runs the daemons as root). State, logs and
# pid files live in $SLURM_LOCAL_DIR (default /tmp/wavessm-slurm).
set -euo pipefail
dir=${SLURM_LOCAL_DIR:-/tmp/wavessm-slurm}
conf=/etc/slurm/slurm.conf

running() { [ -f "$dir/run/$1.pid" ] && kill -0 "$(cat "$dir/run/$1.pid")" 2>/dev/null; }

start() {
    for b in munged slurmctld slurmd sbatch; do
        command -v "$b" >/dev/null || { echo "slurm-local: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
    done
    mkdir -p "$dir"/{ctld,spool,log,run}
    if ! pgrep -x munged >/dev/null; then
        if [ ! -s /etc/munge/munge.key ]; then
            mungekey --create --force 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        fi
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
        if id munge >/dev/null 2>&1; then
            su -s /bin/sh munge -c munged || munged --force
        else
            munged --force
        fi
    fi
    local host node
    host=$(hostname -s)
    node=$(slurmd -C | head -1 | sed 's/RealMemory=\([0-9]*\)/RealMemory=\1/')
    mkdir -p "$(dirname "$conf")"
    cat > "$conf.new" <<CONF
ClusterName=wavessm
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    mv "$conf.new" "$conf"
    running slurmctld || slurmctld
    running slurmd || slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm-local: up ($(sinfo -h -o '%N %T %c CPUs'))"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm-local: the node did not come up; see $dir/log" >&2
    sinfo >&2 || true
    tail -5 "$dir"/log/*.log >&2 || true
    exit 1
}

stop() {
    for d in slurmd slurmctld; do
        if running "$d"; then kill "$(cat "$dir/run/$d.pid")"; fi
    done
    pkill -x munged 2>/dev/null || true
    echo "slurm-local: stopped"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
