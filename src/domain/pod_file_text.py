"""The text of a pod's hostname, hosts and resolv.conf files (the format glibc and musl read)."""

from ports.network import DnsSettings


def resolv_conf(dns: DnsSettings) -> str:
    lines = []
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    lines += [f"nameserver {server}" for server in dns.servers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "".join(line + "\n" for line in lines)


def hosts(hostname: str, ips: list[str]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{hostname}" for ip in ips]
    return "".join(line + "\n" for line in lines)
