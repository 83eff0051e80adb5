#!/usr/bin/env python3
"""Writes a cluster shaped like the Performance issue's: SERVICES headless Services of PODS Ready
pods each (StatefulSet-style hostnames), plus SERVICES/10 ClusterIP Services, as

  manifests.yaml   Kubernetes objects for headless-dns, multi-document YAML
  manifests.json   the same objects as one List, as `kubectl get -o json` prints it
  zone.txt         the same names as a zone file for Knot DNS (SOA/NS, per-Service A sets,
                   per-pod A records, ClusterIP A records, SRV for each headless Service)
  q-pods.txt       dnsperf queries: pod names (one answer)
  q-svcs.txt       dnsperf queries: headless Service names (PODS answers)
  q-mix.txt        dnsperf queries: pods and Services with 10% names that do not exist
  q-srv.txt        dnsperf queries: SRV of headless Services' ports (PODS targets, their
                   addresses in the additional section)

With a fourth argument `full`, the cluster also has what the other kinds of question need, and
their query files: every tenth headless Service dual-stack (q-aaaa.txt: AAAA of its pods), an
ExternalName Service per ClusterIP one pointing at it (q-cname.txt: the alias, followed), the
reverse zone (zone-reverse.txt; q-ptr.txt: pod addresses), names that do not exist (q-nx.txt,
asked with EDNS: the answer says why), and the apex (q-soa.txt: SOA and NS).

usage: gen_cluster.py OUTDIR SERVICES PODS [full]
"""
import json
import os
import random
import sys

out, services, pods = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
full = sys.argv[4:] == ["full"]
zone = "cluster.local"
namespaces = max(1, services // 100)
os.makedirs(out, exist_ok=True)


def pod_ip(n):
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def pod_ip6(n):
    return f"fd00:10::{(n >> 16) & 0xffff:x}:{n & 0xffff:x}"


def reverse_name(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


pod_names, svc_names, dual_names, reverse, aliases = [], [], [], [], []
items = []
with open(f"{out}/manifests.yaml", "w") as m, open(f"{out}/zone.txt", "w") as z:
    z.write(f"$ORIGIN {zone}.\n$TTL 5\n")
    z.write(f"@ SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 5\n@ NS ns.dns.{zone}.\n")
    z.write('dns-version TXT "1.1.0"\n')
    n = 0
    for s in range(services):
        ns = f"ns-{s % namespaces}"
        svc = f"svc-{s}"
        dual = full and s % 10 == 0
        families = "  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n" if dual else ""
        m.write(
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: {ns}}}\n"
            f"spec:\n  clusterIP: None\n  selector: {{app: {svc}}}\n{families}"
            f"  ports: [{{name: web, port: 80, protocol: TCP}}]\n"
        )
        spec = {"clusterIP": "None", "selector": {"app": svc},
                "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}
        if dual:
            spec.update({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"})
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns},
                      "spec": spec})
        svc_name = f"{svc}.{ns}.svc"
        svc_names.append(f"{svc_name}.{zone}")
        for p in range(pods):
            n += 1
            host = f"{svc}-{p}"
            ip = pod_ip(n)
            ips = [ip] + ([pod_ip6(n)] if dual else [])
            pod_ips = ", ".join(f"{{ip: '{a}'}}" if ":" in a else f"{{ip: {a}}}" for a in ips)
            m.write(
                f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {host}\n  namespace: {ns}\n"
                f"  labels: {{app: {svc}, controller-revision-hash: {svc}-5d8f7c9b6, "
                f"statefulset.kubernetes.io/pod-name: {host}}}\n"
                f"spec:\n  hostname: {host}\n  subdomain: {svc}\n"
                f"  containers: [{{name: app, image: 'nginx:1.27', ports: [{{name: web, containerPort: 80}}]}}]\n"
                f"status:\n  phase: Running\n  podIP: {ip}\n  podIPs: [{pod_ips}]\n"
                f"  conditions: [{{type: Ready, status: 'True'}}]\n"
            )
            items.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": host, "namespace": ns, "labels": {
                    "app": svc, "controller-revision-hash": f"{svc}-5d8f7c9b6",
                    "statefulset.kubernetes.io/pod-name": host}},
                "spec": {"hostname": host, "subdomain": svc, "containers": [
                    {"name": "app", "image": "nginx:1.27", "ports": [{"name": "web", "containerPort": 80}]}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": a} for a in ips],
                           "conditions": [{"type": "Ready", "status": "True"}]}})
            z.write(f"{svc_name} A {ip}\n{host}.{svc_name} A {ip}\n")
            if dual:
                z.write(f"{svc_name} AAAA {ips[1]}\n{host}.{svc_name} AAAA {ips[1]}\n")
                dual_names.append(f"{host}.{svc_name}.{zone}")
            reverse.append((ip, f"{host}.{svc_name}.{zone}."))
            z.write(f"_web._tcp.{svc_name} SRV 0 10 80 {host}.{svc_name}.{zone}.\n")
            pod_names.append(f"{host}.{svc_name}.{zone}")
    for c in range(max(1, services // 10)):
        ns = f"ns-{c % namespaces}"
        ip = f"10.96.{(c >> 8) & 255}.{c & 255}"
        m.write(
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: api-{c}, namespace: {ns}}}\n"
            f"spec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  selector: {{app: api-{c}}}\n"
            f"  ports: [{{name: http, port: 8080, protocol: TCP}}]\n"
        )
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"api-{c}", "namespace": ns},
                      "spec": {"clusterIP": ip, "clusterIPs": [ip], "selector": {"app": f"api-{c}"},
                               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}})
        z.write(f"api-{c}.{ns}.svc A {ip}\n")
        reverse.append((ip, f"api-{c}.{ns}.svc.{zone}."))
        if full:
            # An ExternalName Service whose target is in the zone: the CNAME, then its address.
            target = f"api-{c}.{ns}.svc.{zone}"
            m.write(
                f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: ext-{c}, namespace: {ns}}}\n"
                f"spec:\n  type: ExternalName\n  externalName: {target}\n"
            )
            items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"ext-{c}", "namespace": ns},
                          "spec": {"type": "ExternalName", "externalName": target}})
            z.write(f"ext-{c}.{ns}.svc CNAME {target}.\n")
            aliases.append(f"ext-{c}.{ns}.svc.{zone}")
    if full:
        # The name server's address, as headless-dns publishes it when it listens on one.
        z.write("ns.dns A 127.0.0.1\n")

with open(f"{out}/manifests.json", "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}, f)

rng = random.Random(42)
QUERIES = 200_000


def write_queries(mix, query):
    """q-MIX.txt: QUERIES lines, query(i) each (called in order: the random draws, and so the
    files, stay the same from run to run)."""
    with open(f"{out}/q-{mix}.txt", "w") as f:
        for i in range(QUERIES):
            f.write(query(i) + "\n")


def mixed(i):
    r = rng.random()
    if r < 0.10:
        return f"nope-{i}.{rng.choice(svc_names)} A"
    return f"{rng.choice(pod_names if r < 0.55 else svc_names)} A"


write_queries("pods", lambda i: f"{rng.choice(pod_names)} A")
write_queries("svcs", lambda i: f"{rng.choice(svc_names)} A")
write_queries("mix", mixed)
# Last, so that the files above stay as they were.
write_queries("srv", lambda i: f"_web._tcp.{rng.choice(svc_names)} SRV")
if full:
    with open(f"{out}/zone-reverse.txt", "w") as z:
        z.write("$ORIGIN in-addr.arpa.\n$TTL 5\n")
        z.write(f"@ SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 5\n@ NS ns.dns.{zone}.\n")
        for ip, name in reverse:
            z.write(f"{reverse_name(ip)}. PTR {name}\n")
    write_queries("aaaa", lambda i: f"{rng.choice(dual_names)} AAAA")
    write_queries("ptr", lambda i: f"{reverse_name(rng.choice(reverse)[0])} PTR")
    write_queries("cname", lambda i: f"{rng.choice(aliases)} A")
    write_queries("nx", lambda i: f"nope-{i}.{rng.choice(svc_names)} A")
    write_queries("soa", lambda i: f"{zone} {'SOA' if i % 2 else 'NS'}")
print(f"{out}: {services} headless services x {pods} pods, {n} pods, {len(svc_names) // 10 or 1} ClusterIP services")
