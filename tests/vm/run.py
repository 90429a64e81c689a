#!/usr/bin/env python3
"""Boot the test VM for one scenario and bring back its result.

    run.py [--out DIR] [--timeout SEC] [--env NAME=VALUE]... SCENARIO.sh

Runs setup.sh (cached), prepares the scenario on the host, boots Debian's
kernel under QEMU (TCG; KVM only when a probe boot with it works), loads the
drivers the scenario asks for, runs the scenario inside (in a chroot into the
host's root, shared read-only over 9p) and exits with its exit status. The
job folder DIR (default $FACETD_VM_OUT/<name>) is shared writable at the
same path inside the VM: the scenario's log and result files land there.

A scenario is a POSIX shell script. Lines "#@ WORD ARGS" in it tell:
    #@ timeout SEC        the VM is killed after SEC s (default 60)
    #@ timeout SEC + NAME  ... plus the seconds in $NAME when it is set (a
                          scenario whose length is a setting)
    #@ memory MIB         the VM's memory (default 1024; FACETD_VM_MEM wins)
    #@ module NAME OPTS   load a kernel module (in order) with options
    #@ needs PROG...      host programs the scenario runs (else: skip)
    #@ needs-bin PROG...  programs of the build, in $FACETD_VM_BIN (else: skip)
    #@ needs-build PATH...  files of the build, in $FACETD_BUILD (else: skip)
    #@ needs-config NAME...  features set in $FACETD_BUILD/config.h (else: skip)
    #@ prepare CMD ARGS   run on the host, in DIR, before the boot (77: skip);
                          CMD is looked up beside this file
    #@ check CMD ARGS     run on the host, in DIR, after the scenario passed:
                          checks of its result files that would take long
                          under TCG (pixel counts in Python); non-zero fails
Inside, the scenario sees FVM_OUT (= DIR), FVM_TOOLS (this folder), the
FACETD_* variables of the caller and those given with --env.

Exit status: the scenario's; 77 (skip, with a one-line reason) when QEMU, the
kernel or something the scenario needs cannot be had; 1 when the VM failed or
hit its time limit.
"""

import argparse
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
QEMU = os.environ.get("FACETD_VM_QEMU", "qemu-system-x86_64")
PROBE_TIMEOUT = 10
# QEMU 7.2 emulates AVX2 and FMA an order of magnitude slower than SSE4.2
# (the model's sgemm: 10x), and OpenBLAS, libyuv and glibc pick their AVX2
# code when the CPU has it: the guest CPU has no AVX.
TCG_CPU = "max,avx=off,avx2=off,fma=off,f16c=off,avx512f=off"
PASS_ENV = re.compile(r"^(FACETD_\w+|FVM_\w+|LC_ALL|LANG|TZ)$")


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def log(msg):
    print("vm: " + msg, flush=True)


def cache_dir():
    if os.environ.get("FACETD_VM_CACHE"):
        return os.environ["FACETD_VM_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "facetd-vm")


def parse_scenario(path):
    spec = {"timeout": 60.0, "memory": "1024", "modules": [], "needs": [], "needs_bin": [],
            "needs_build": [], "needs_config": [], "prepare": [], "check": []}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"#@\s+(\S+)\s*(.*?)\s*$", line)
            if not m:
                continue
            word, rest = m.groups()
            if word == "timeout":
                t = re.fullmatch(r"(\d+(?:\.\d+)?)(?:\s*\+\s*(\w+))?", rest)
                if not t:
                    raise Failure(f"{path}:{n}: '#@ timeout {rest}': SEC or SEC + NAME")
                spec["timeout"] = float(t.group(1))
                spec["timeout_plus"] = t.group(2)
            elif word == "memory":
                spec["memory"] = str(int(rest))
            elif word == "module":
                spec["modules"].append(rest)
            elif word == "needs":
                spec["needs"] += rest.split()
            elif word in ("needs-bin", "needs-build", "needs-config"):
                spec[word.replace("-", "_")] += rest.split()
            elif word in ("prepare", "check"):
                spec[word].append(shlex.split(rest))
            else:
                raise Failure(f"{path}:{n}: unknown directive '#@ {word}'")
    return spec


def check_needs(spec):
    for prog in spec["needs"]:
        if not shutil.which(prog):
            raise Skip(f"{prog} not found on the host")
    bindir = os.environ.get("FACETD_VM_BIN", "")
    for prog in spec["needs_bin"]:
        if not os.access(os.path.join(bindir, prog), os.X_OK):
            raise Skip(f"{prog} was not built (needs libv4l2: -Dv4l2=enabled)")
    build = os.environ.get("FACETD_BUILD", "")
    for path in spec["needs_build"]:
        if not os.path.exists(os.path.join(build, path)):
            raise Skip(f"{path} is not in the build folder (FACETD_BUILD={build!r})")
    if spec["needs_config"]:
        config = read(os.path.join(build, "config.h"))
        for name in spec["needs_config"]:
            if not re.search(rf"^#define {name} 1$", config, re.M):
                raise Skip(f"the build has no {name} (see its config.h)")


def run_setup():
    env = dict(os.environ, FACETD_VM_CACHE=cache_dir())
    r = subprocess.run(["/bin/sh", os.path.join(HERE, "setup.sh")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode == SKIP:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("SKIP:")]
        raise Skip(lines[-1][5:].strip() if lines else "setup.sh skipped")
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise Failure(f"setup.sh failed with status {r.returncode}")
    env = {}
    with open(os.path.join(cache_dir(), "vm.env"), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    for k in ("FVM_KERNEL", "FVM_INITRD"):
        if not os.path.isfile(env.get(k, "")):
            raise Skip(f"the cached {k[4:].lower()} is missing; run setup.sh")
    return env


def set_pdeathsig():
    """In the child: die with the runner, so that QEMU is never left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def qemu_escape(path):
    return path.replace(",", ",,")


def qemu_command(vm, accel, out, console, extra_append="", memory="1024"):
    if accel == "kvm":
        cpu = ["-accel", "kvm", "-cpu", "host"]
    else:
        cpu = ["-accel", "tcg", "-cpu", os.environ.get("FACETD_VM_CPU", TCG_CPU)]
    append = ("console=ttyS0 panic=-1 loglevel=3 mitigations=off "
              "cryptomgr.notests " + extra_append)
    cmd = [QEMU, *cpu,
           "-m", os.environ.get("FACETD_VM_MEM", memory),
           "-smp", os.environ.get("FACETD_VM_SMP", "1"),
           "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-chardev", f"file,id=con,path={qemu_escape(console)}",
           "-serial", "chardev:con",
           "-kernel", vm["FVM_KERNEL"], "-initrd", vm["FVM_INITRD"],
           "-append", append.strip()]
    if out:
        cmd += ["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,"
                "readonly=on,multidevs=remap",
                "-virtfs", f"local,path={qemu_escape(out)},mount_tag=vmout,"
                "security_model=none,multidevs=remap"]
    return cmd


def boot(cmd, timeout):
    """Runs QEMU; returns (exit status or None on time-out, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
    rc = None
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        pass
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
    if rc is None:
        out, _ = p.communicate()
    text = out.decode(errors="replace").strip()
    if text:
        log("qemu: " + text.replace("\n", "\nvm: qemu: "))
    return rc, time.monotonic() - t0


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def choose_accel(vm, workdir):
    """tcg, or kvm when /dev/kvm is usable and a probe boot with it works.
    The probe's verdict is cached per host kernel, QEMU and guest kernel."""
    forced = os.environ.get("FACETD_VM_ACCEL")
    if forced in ("tcg", "kvm"):
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    qver = subprocess.run([QEMU, "--version"], stdout=subprocess.PIPE,
                          text=True).stdout.splitlines()[0]
    key = f"{os.uname().release} | {qver} | {vm['FVM_KVER']}"
    stamp = os.path.join(cache_dir(), "kvm-probe")
    cached = read(stamp).split("\n", 1)
    if len(cached) == 2 and cached[1].strip() == key:
        return cached[0]
    console = os.path.join(workdir, "kvm-probe.log")
    rc, t = boot(qemu_command(vm, "kvm", None, console, "fvm.probe=1"),
                 PROBE_TIMEOUT)
    ok = rc == 0 and "FVM-PROBE-OK" in read(console)
    accel = "kvm" if ok else "tcg"
    log(f"KVM probe boot {'worked' if ok else 'failed'} ({t:.1f} s): using {accel}")
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(f"{accel}\n{key}\n")
    return accel


def host_step(cmd, out, env):
    prog = cmd[0] if os.path.isabs(cmd[0]) else os.path.join(HERE, cmd[0])
    interpreter = {".sh": ["/bin/sh"], ".py": [sys.executable]}.get(
        os.path.splitext(prog)[1], [])
    return subprocess.run([*interpreter, prog, *cmd[1:]], cwd=out, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def prepare(spec, out, env):
    for cmd in spec["prepare"]:
        r = host_step(cmd, out, env)
        if r.returncode == SKIP:
            lines = r.stdout.strip().splitlines() or ["prepare step skipped"]
            raise Skip(lines[-1].removeprefix("SKIP:").strip())
        if r.returncode != 0:
            sys.stdout.write(r.stdout)
            raise Failure(f"prepare step {' '.join(cmd)} failed ({r.returncode})")


def check(spec, out, env):
    """The host-side checks; 0, or 1 after printing what failed."""
    for cmd in spec["check"]:
        r = host_step(cmd, out, env)
        sys.stdout.write(r.stdout)
        with open(os.path.join(out, "check.log"), "a", encoding="utf-8") as f:
            f.write(r.stdout)
        if r.returncode != 0:
            print(f"FAIL: check {' '.join(cmd)} (status {r.returncode})", flush=True)
            return 1
    return 0


def scenario_timeout(spec, env):
    """The limit: '#@ timeout SEC [+ NAME]'."""
    plus = spec.get("timeout_plus")
    if not plus or not env.get(plus):
        return spec["timeout"]
    try:
        return spec["timeout"] + float(env[plus])
    except ValueError:
        raise Failure(f"{plus}={env[plus]!r} is not a number of seconds") from None


def write_job(out, scenario, spec, env, accel, given=()):
    with open(os.path.join(out, "modules"), "w", encoding="utf-8") as f:
        for m in spec["modules"]:
            f.write(m + "\n")
    lines = ["export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "export HOME=/run/tmp TMPDIR=/run/tmp",
             f"export FVM_ACCEL={accel}"]
    if accel == "tcg":
        # The guest CPU has no AVX (TCG_CPU); OpenBLAS would fall back to its
        # generic SSE3 kernels (1.5x slower under TCG than its SSE4.2 ones).
        lines.append("export OPENBLAS_CORETYPE=Nehalem")
    for k in sorted(env):
        if PASS_ENV.match(k) or k in given:
            lines.append(f"export {k}={shlex.quote(env[k])}")
    lines += [f"cd {shlex.quote(out)} || exit 125",
              f"exec /bin/sh {shlex.quote(scenario)}"]
    with open(os.path.join(out, "job.sh"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def fresh_dir(path):
    """Empties a job folder of an earlier run; refuses any other folder."""
    marker = os.path.join(path, ".fvm-job")
    if os.path.isdir(path) and os.listdir(path):
        if not any(os.path.exists(os.path.join(path, f))
                   for f in (".fvm-job", "job.sh")):
            raise Failure(f"{path} is no job folder of run.py: not emptying it")
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    open(marker, "w", encoding="utf-8").close()


def log_console(console):
    lines = console.strip().splitlines()[-30:]
    log("console (last lines):\n" + "\n".join(lines) if lines
        else "the console is empty")


def uptime_marks(console):
    m = re.search(r"FVM-T boot=([\d.]+) ready=([\d.]+) done=([\d.]+)", console)
    return tuple(float(x) for x in m.groups()) if m else None


def report_timing(name, status, wall, marks):
    detail = ""
    if marks:
        detail = (f" (guest: kernel {marks[0]:.1f} s, drivers+mounts "
                  f"{marks[1] - marks[0]:.1f} s, scenario {marks[2] - marks[1]:.1f} s)")
    log(f"{name}: {status}, boot-to-result {wall:.1f} s{detail}")
    path = os.environ.get("FACETD_VM_TIMINGS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{name}\t{status}\t{wall:.1f}\n")


def run(args):
    scenario = os.path.abspath(args.scenario)
    name = os.path.basename(scenario).removesuffix(".sh")
    spec = parse_scenario(scenario)
    if not shutil.which(QEMU):
        raise Skip(f"{QEMU} not found (install: qemu-system-x86)")
    check_needs(spec)
    vm = run_setup()
    out = os.path.abspath(args.out or os.path.join(
        os.environ.get("FACETD_VM_OUT") or os.path.join(os.getcwd(), "vm-results"),
        name))
    if re.search(r"\s", out):
        raise Failure(f"the job folder {out!r} has white space in its path")
    fresh_dir(out)
    env = dict(os.environ, FVM_OUT=out, FVM_TOOLS=HERE)
    given = dict(kv.split("=", 1) for kv in args.env)
    env.update(given)
    timeout = args.timeout or scenario_timeout(spec, env)
    prepare(spec, out, env)
    accel = choose_accel(vm, out)
    write_job(out, scenario, spec, env, accel, given)
    log(f"{name}: kernel {vm['FVM_KVER']}, {accel}, limit {timeout:.0f} s, "
        f"results in {out}")
    console_path = os.path.join(out, "console.log")
    rc, wall = boot(qemu_command(vm, accel, out, console_path,
                                 f"fvm.out={out}", spec["memory"]), timeout)
    console = read(console_path)
    log_text = read(os.path.join(out, "scenario.log"))
    if log_text:
        sys.stdout.write(log_text if log_text.endswith("\n") else log_text + "\n")
    code = read(os.path.join(out, "exit-code")).strip()
    if rc is None or not code.isdigit():
        log_console(console)
        status = (f"killed at its time limit of {timeout:.0f} s" if rc is None
                  else f"the VM ended without a result (QEMU status {rc})")
        report_timing(name, "TIMEOUT" if rc is None else "VM-FAILED", wall,
                      uptime_marks(console))
        raise Failure(f"{name}: {status}")
    status = int(code)
    if status == 125:
        log_console(console)
    if status == 0:
        status = check(spec, out, env)
    word = {0: "passed", SKIP: "skipped"}.get(status, f"failed ({status})")
    report_timing(name, word, wall, uptime_marks(console))
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--out", help="job folder (an earlier one is emptied)")
    ap.add_argument("--timeout", type=float, help="override the scenario's limit")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    # SIGTERM (meson's time-out, ^C) unwinds through boot(), which kills QEMU.
    def interrupted(sig, _frame):
        raise Failure(f"interrupted by signal {sig}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        return run(args)
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
