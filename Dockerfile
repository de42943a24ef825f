# The operator image. Built where a container engine exists (not on the dev machines).
# Release builds pin the base by digest: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>
# (resolved by the release job from the registry; the tag alone is for local builds).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --no-create-home capliquify
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
EXPOSE 8080 8081
ENTRYPOINT ["capliquify"]
CMD ["run", "--log-format=json"]
