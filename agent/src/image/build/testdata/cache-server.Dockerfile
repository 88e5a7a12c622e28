FROM debian:bookworm-slim
RUN set -eux; \
	groupadd -r -g 999 redis; \
	useradd -r -g redis -u 999 redis
ENV REDIS_VERSION 7.2.4
ADD --checksum=sha256:8d104c26a154b29fd67d6568b4f375212212ad41e0c2caa3d66480e78dbd3b59 https://download.example.org/releases/redis-7.2.4.tar.gz /usr/src/
RUN mkdir /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
COPY docker-entrypoint.sh /usr/local/bin/
ONBUILD COPY redis.conf /usr/local/etc/redis/redis.conf
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
