#!/usr/bin/env bash
# Machine facts and versions for BENCHMARKS.md: scripts/bench/machine.sh OUT_META_DIR GATEWAY LOADGEN
# Writes machine.json and versions.json.
set -euo pipefail
out=$1 gw=$2 lg=$3
mkdir -p "$out"

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
threads_per_core=$(lscpu 2>/dev/null | awk -F': *' '/^Thread\(s\) per core/ {print $2}')
hypervisor=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ {print $2}')
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
src=$(findmnt -no SOURCE -T . 2>/dev/null || echo unknown)
fstype=$(findmnt -no FSTYPE -T . 2>/dev/null || echo unknown)
fsopts=$(findmnt -no OPTIONS -T . 2>/dev/null || echo unknown)
dev=$(basename "$src")
rota=$(cat "/sys/block/$dev/queue/rotational" 2>/dev/null || echo "?")
model=$(cat "/sys/block/$dev/device/model" 2>/dev/null | xargs || true)
sched=$(cat "/sys/block/$dev/queue/scheduler" 2>/dev/null || echo "?")
wcache=$(cat "/sys/block/$dev/queue/write_cache" 2>/dev/null || echo "?")
sysctl_of() { sysctl -n "$1" 2>/dev/null | tr '\t' ' ' || echo "?"; }

jq -n \
    --arg cpu "$cpu_model" --argjson cores "$(nproc)" --arg tpc "${threads_per_core:-?}" --arg hv "${hypervisor:-none}" \
    --argjson mem "$mem_kib" --arg kernel "$(uname -r)" --arg os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
    --arg dev "$src" --arg fstype "$fstype" --arg fsopts "$fsopts" --arg rota "$rota" --arg model "${model:-?}" \
    --arg sched "$sched" --arg wcache "$wcache" \
    --arg nofile "$(ulimit -n)" --arg nofile_hard "$(ulimit -Hn)" \
    --arg somaxconn "$(sysctl_of net.core.somaxconn)" --arg synbacklog "$(sysctl_of net.ipv4.tcp_max_syn_backlog)" \
    --arg ports "$(sysctl_of net.ipv4.ip_local_port_range)" --arg twreuse "$(sysctl_of net.ipv4.tcp_tw_reuse)" \
    --arg rmem "$(sysctl_of net.core.rmem_max)" --arg wmem "$(sysctl_of net.core.wmem_max)" \
    --arg tcpmem "$(sysctl_of net.ipv4.tcp_mem)" --arg thp "$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')" \
    '{cpu_model: $cpu, cpus: $cores, threads_per_core: $tpc, hypervisor: $hv, memory_kib: $mem, kernel: $kernel, os: $os,
      disk: {device: $dev, model: $model, rotational: $rota, scheduler: $sched, write_cache: $wcache,
             filesystem: $fstype, mount_options: $fsopts},
      limits: {nofile_soft: $nofile, nofile_hard: $nofile_hard},
      sysctl: {"net.core.somaxconn": $somaxconn, "net.ipv4.tcp_max_syn_backlog": $synbacklog,
               "net.ipv4.ip_local_port_range": $ports, "net.ipv4.tcp_tw_reuse": $twreuse,
               "net.core.rmem_max": $rmem, "net.core.wmem_max": $wmem, "net.ipv4.tcp_mem": $tcpmem,
               transparent_hugepage: $thp}}' >"$out/machine.json"

lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock; }
dirty=$(git status --porcelain -- gateway ffd storage loadgen Cargo.lock 2>/dev/null | awk '{print $2}' | paste -sd' ' -)
jq -n --arg commit "$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --arg subject "$(git log -1 --format=%s 2>/dev/null | cut -c1-100)" \
    --arg date "$(git log -1 --format=%cI 2>/dev/null)" --arg dirty "$dirty" \
    --arg rustc "$(rustc -V 2>/dev/null)" --arg gw "$("$gw" --version 2>/dev/null)" --arg lg "$("$lg" --version 2>/dev/null)" \
    --arg fjall "$(lock_version fjall)" --arg tokio "$(lock_version tokio)" --arg rustls "$(lock_version rustls)" \
    --arg quinn "$(lock_version quinn)" --arg ring "$(lock_version ring)" \
    --arg alloc "$(grep -ho 'static [A-Z_]*: [A-Za-z_:]*' gateway/src/main.rs 2>/dev/null | head -1 | sed 's/^static [A-Z_]*: //' || true)" \
    --arg profile "$(awk '/^\[profile.release\]/ {p=1; next} /^\[/ {p=0} p && NF' Cargo.toml | paste -sd';' -)" \
    '{git_commit: $commit, git_subject: $subject, git_date: $date, uncommitted_changes_in: $dirty,
      rustc: $rustc, gateway: $gw, gateway_allocator: (if $alloc == "" then "system (glibc malloc)" else $alloc end), loadgen: $lg, release_profile: $profile,
      crates: {fjall: $fjall, tokio: $tokio, rustls: $rustls, quinn: $quinn, ring: $ring}}' >"$out/versions.json"
