"""The weekly sales report agent (the demo for profiles/sales-report.yaml).

It does its job -- totals per region and product from inputs/sales.csv into
out/report.md -- and then tries a few things the profile does not allow, printing
what the sandbox answered.
"""
import csv
import ctypes
import errno
import os
import socket
import subprocess
from collections import defaultdict


def attempt(label, action):
    try:
        result = action()
        print(f"  {label:<44} ALLOWED {result if result is not None else ''}")
    except OSError as error:
        name = errno.errorcode.get(error.errno, str(error.errno))
        print(f"  {label:<44} blocked: {name}")


def unshare_user_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def write_report():
    totals = defaultdict(float)
    units = defaultdict(int)
    with open("inputs/sales.csv", newline="") as source:
        for row in csv.DictReader(source):
            totals[row["region"]] += float(row["revenue"])
            units[row["product"]] += int(row["units"])
    lines = ["# Weekly sales report", "", "| region | revenue |", "|---|---:|"]
    lines += [f"| {region} | {revenue:,.2f} |" for region, revenue in sorted(totals.items())]
    lines += ["", "| product | units |", "|---|---:|"]
    lines += [f"| {product} | {count} |" for product, count in sorted(units.items())]
    with open("out/report.md", "w") as target:
        target.write("\n".join(lines) + "\n")
    print(f"wrote out/report.md: {len(totals)} regions, revenue {sum(totals.values()):,.2f}")


def main():
    write_report()
    print("what the sandbox allowed and refused:")
    attempt("read the denied inputs/credentials.txt", lambda: open("inputs/credentials.txt").read(10))
    attempt("write inputs/sales.csv (read-only input)", lambda: open("inputs/sales.csv", "a").write("x"))
    attempt("read /etc/passwd (not listed)", lambda: open("/etc/passwd").read(10))
    attempt("run /bin/sh (not in filesystem.exec)", lambda: subprocess.run(["/bin/sh", "-c", "id"]))
    attempt("open a raw packet socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    attempt("connect to the host's 127.0.0.1:22", lambda: socket.create_connection(("127.0.0.1", 22), 1))
    attempt("create a user namespace (unshare)", unshare_user_namespace)
    print(f"  network interfaces: {[name for _, name in socket.if_nameindex()]}")
    print(f"  processes visible: {sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}"
          f" (this one is {os.getpid()}, its parent {os.getppid()})")
    print(f"  SALES_API_TOKEN present: {'yes' if os.environ.get('SALES_API_TOKEN') else 'no'}"
          " (secrets are passed through, never printed by Corral)")


if __name__ == "__main__":
    main()
