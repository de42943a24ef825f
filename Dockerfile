# The operator's image. One file for both builds:
# - `make image` (hack/image/build.sh): buildah, no daemon, no registry; BASE_IMAGE is a Debian
#   root filesystem made here from Debian's packages (hack/image/base.sh).
# - the release (.github/workflows/release.yaml): BASE_IMAGE=python:3.11-slim@sha256:<digest>,
#   pinned by digest, for each platform.
# The context's wheelhouse/deps/ holds requirements.txt, the dependencies pinned to the
# versions the tests ran with (hack/image/pins.py), and wheelhouse/project/ the project's wheel.
# `make image` also puts every dependency's wheel in deps/ (downloaded by the host's pip for the
# base's python 3.11 and platform) and installs with PIP_FLAGS=--no-index: the build touches no
# network. The release passes PIP_FLAGS="" and pip fetches the pins for each platform.
# Both stages use the same base: the venv's interpreter is its python3.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS build
ARG PIP_FLAGS=--no-index
# Dependencies first: their layer is reused while the pins do not change.
COPY wheelhouse/deps/ /wheels/deps/
RUN python3 -m venv /opt/capliquify \
 && /opt/capliquify/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_FLAGS} \
      --find-links /wheels/deps -r /wheels/deps/requirements.txt
COPY wheelhouse/project/ /wheels/project/
RUN /opt/capliquify/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /wheels/project/*.whl \
 && /opt/capliquify/bin/pip uninstall --yes --quiet pip setuptools

# The examples' workload (manifests/examples; the tests on real nodes): an HTTP server whose
# /health can be made to fail (hack/image/testapp.py), standard library only, on the same base.
# `--target demo-web`; the operator (the last stage) is the default target.
FROM ${BASE_IMAGE} AS demo-web
COPY wheelhouse/app/testapp.py /app/web.py
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python3", "/app/web.py"]

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="capliquify-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/capliquify/operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/capliquify /opt/capliquify
# Bytecode was compiled at install: the root filesystem is read-only in the shipped manifests.
ENV PATH=/opt/capliquify/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric: the kubelet's runAsNonRoot check needs a number, and the slim base has no such user.
USER 10001:10001
EXPOSE 8080 8081
# Exec form, absolute path: nothing at run time needs a shell.
ENTRYPOINT ["/opt/capliquify/bin/capliquify"]
CMD ["run", "--log-format=json"]
