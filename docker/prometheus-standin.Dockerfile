# A local stand-in for the official prom/prometheus image, for machines that reach Debian's
# mirror but no container registry (docker/base-images.sh builds it). Same interface as the
# official image: ENTRYPOINT /bin/prometheus, config at /etc/prometheus/prometheus.yml,
# data in /prometheus, runs as nobody, port 9090.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus /etc/prometheus \
 && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
