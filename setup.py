"""Build the C layer against the EPICS libraries of the epicscorelibs wheel."""
import importlib.util
import os

import epicscorelibs.path
import epicscorelibs.version
import pvxslibs.path
import pvxslibs.version
from epicscorelibs.config import get_config_var
from setuptools_dso import DSO, Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, "build", "generated")


def generate_type_tables():
    """softioc.dbd and the C layer's pyioc_rtypes.h, from softioc/_types.py."""
    spec = importlib.util.spec_from_file_location(
        "softioc_types", os.path.join(HERE, "src", "softioc", "_types.py"))
    types = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(types)
    os.makedirs(GENERATED, exist_ok=True)
    for path, text in ((os.path.join(GENERATED, "pyioc_rtypes.h"), types.render_c()),
                       (os.path.join(HERE, "src", "softioc", "softioc.dbd"), types.render_dbd())):
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as f:
                f.write(text)


generate_type_tables()

ext = Extension(
    name="softioc._ext",
    sources=["src/softioc/_ext/" + name for name in (
        "module.c", "base.c", "record.c", "convert.c", "staticdb.c", "ioc.c", "errors.c",
        "stats.c", "devsup.c", "fieldwatch.c", "patches.c", "strict.c", "putlog.c", "writeq.c",
        "watch.c", "probe.c")],
    depends=["src/softioc/_ext/pythonioc.h", "src/softioc/_types.py"],
    include_dirs=[epicscorelibs.path.include_path, GENERATED],
    # ca: libca, for `pythonioc probe`'s client (probe.c); dbCore links it anyway.
    dsos=["epicscorelibs.lib.dbCore", "epicscorelibs.lib.ca", "epicscorelibs.lib.Com"],
    define_macros=get_config_var("CPPFLAGS"),
    extra_compile_args=get_config_var("CFLAGS") + ["-Wall", "-Werror=implicit-function-declaration"],
    extra_link_args=get_config_var("LDFLAGS"),
)

# Strict puts' guard of QSRV2's blocking put (qsrvguard.cpp): a library of its
# own, loaded with PVXS only when PV Access is served; it calls into _ext.
qsrvguard = DSO(
    name="softioc._qsrvguard",
    sources=["src/softioc/_ext/qsrvguard.cpp"],
    include_dirs=[epicscorelibs.path.include_path, pvxslibs.path.include_path],
    dsos=["epicscorelibs.lib.dbCore", "epicscorelibs.lib.Com",
          "pvxslibs.lib.pvxs", "pvxslibs.lib.pvxsIoc"],
    define_macros=get_config_var("CPPFLAGS"),
    extra_compile_args=get_config_var("CXXFLAGS") + ["-Wall"],
    extra_link_args=get_config_var("LDFLAGS"),
)

# PV Access PVs beside the records (softioc.pva.PV, Image, Table): PVXS
# SharedPVs on QSRV2's server, p4p Values in and out; imported when first used.
pvaserver = Extension(
    name="softioc._pvaserver",
    sources=["src/softioc/_ext/pvaserver.cpp"],
    include_dirs=[epicscorelibs.path.include_path, pvxslibs.path.include_path],
    dsos=["epicscorelibs.lib.Com", "pvxslibs.lib.pvxs", "pvxslibs.lib.pvxsIoc"],
    define_macros=get_config_var("CPPFLAGS"),
    extra_compile_args=get_config_var("CXXFLAGS") + ["-Wall"],
    extra_link_args=get_config_var("LDFLAGS"),
    language="c++",
)

setup(
    x_dsos=[qsrvguard],
    ext_modules=[ext, pvaserver],
    install_requires=[
        epicscorelibs.version.abi_requires(),
        pvxslibs.version.abi_requires(),
        "epicsdbbuilder>=1.5",
        "numpy>=1.21",
        "psutil>=6.0",  # softioc.health: host metrics
        # softioc.autosave reads and writes pythonSoftIOC's .softsav files, which
        # are YAML (a format with no parser in the standard library).
        "pyyaml>=5.1",
    ],
)
