@echo off
rem koe-server on Windows: double-click to install everything and run the whole server.
rem Mirrors the Makefile:  run.bat [run|install|test|lint|typecheck|pytest|bench|soak|clean|help]
rem   run.bat                     start the four services (Ctrl-C stops them)
rem   run.bat run asr tts         start only some
rem   set PROFILE=production & run.bat     the production models (an NVIDIA GPU; see README)
rem First run: creates .venv with Python 3.11, installs torch and the project, prepares the
rem embedded models into %USERPROFILE%\.cache\koe (KOE_CACHE_DIR overrides) with progress.
setlocal EnableExtensions
cd /d "%~dp0"

set "VENV=.venv"
set "PY=%VENV%\Scripts\python.exe"
set "STAMP=%VENV%\.installed"
rem The Makefile's pins. torch: the CPU build from PyTorch's index (set TORCH_INDEX to
rem https://download.pytorch.org/whl/cu128 for an NVIDIA GPU); an unpinned torch pulls
rem another build. pyopenjtalk-plus is reinstalled last (see :install).
set "TORCH=torch==2.13.0"
set "OPENJTALK=pyopenjtalk-plus==0.4.1.post10"
if not defined TORCH_INDEX set "TORCH_INDEX=https://download.pytorch.org/whl/cpu"
if not defined PROFILE set "PROFILE=embedded"
set "HASH=import hashlib, sys; from pathlib import Path; s = Path(sys.argv[2]); h = hashlib.sha256(Path(sys.argv[1]).read_bytes()).hexdigest()"

set "TARGET=%~1"
if "%TARGET%"=="" set "TARGET=run"
set "ARGS="
:collect
shift
if "%~1"=="" goto dispatch
set "ARGS=%ARGS% %1"
goto collect

:dispatch
if /i "%TARGET%"=="help" goto help
if /i "%TARGET%"=="clean" goto clean
call :install
if errorlevel 1 goto fail
if /i "%TARGET%"=="install" goto end
if /i "%TARGET%"=="run" goto run
if /i "%TARGET%"=="lint" goto lint
if /i "%TARGET%"=="typecheck" goto typecheck
if /i "%TARGET%"=="pytest" goto pytest
if /i "%TARGET%"=="test" goto test
if /i "%TARGET%"=="bench" goto bench
if /i "%TARGET%"=="soak" goto soak
echo unknown target "%TARGET%"
goto help

:run
"%PY%" -m services.launcher --profile %PROFILE%%ARGS%
if errorlevel 1 goto fail
goto end

:lint
"%VENV%\Scripts\ruff.exe" check .
if errorlevel 1 goto fail
"%VENV%\Scripts\ruff.exe" format --check .
if errorlevel 1 goto fail
goto end

:typecheck
"%VENV%\Scripts\mypy.exe"
if errorlevel 1 goto fail
goto end

:pytest
"%PY%" -m pytest %PYTEST_ARGS%%ARGS%
if errorlevel 1 goto fail
goto end

:test
"%VENV%\Scripts\ruff.exe" check .
if errorlevel 1 goto fail
"%VENV%\Scripts\ruff.exe" format --check .
if errorlevel 1 goto fail
"%VENV%\Scripts\mypy.exe"
if errorlevel 1 goto fail
"%PY%" -m pytest %PYTEST_ARGS%%ARGS%
if errorlevel 1 goto fail
goto end

:bench
"%PY%" -m bench %BENCH_ARGS%%ARGS%
if errorlevel 1 goto fail
goto end

:soak
if not defined SOAK_ARGS set SOAK_ARGS=--sessions 16 --minutes 10
"%PY%" -m tests.reliability.soak %SOAK_ARGS%%ARGS%
if errorlevel 1 goto fail
goto end

:clean
if exist "%VENV%" rmdir /s /q "%VENV%"
for %%d in (.pytest_cache .mypy_cache .ruff_cache) do if exist %%d rmdir /s /q %%d
echo removed the virtualenv (the model cache stays)
goto end

:help
echo run.bat            start the services on the embedded models (Ctrl-C stops them)
echo run.bat test       install everything, then lint, type-check and run the test suite
echo run.bat bench      measure latency and real-time factors on this machine
echo run.bat soak       many sessions talking for minutes: no lost reply, no growth
echo run.bat clean      remove the virtualenv (the model cache stays)
echo set PROFILE=production before run.bat for the production models on a GPU
goto end

rem ---- install: the Makefile's $(STAMP) recipe, redone when pyproject.toml changes ----
:install
if exist "%PY%" goto have_venv
call :find_python
if errorlevel 1 exit /b 1
echo [koe] creating %VENV% with %PYTHON311%
%PYTHON311% -m venv "%VENV%"
if errorlevel 1 exit /b 1
"%PY%" -m pip install --quiet --upgrade pip
if errorlevel 1 exit /b 1
:have_venv
rem up to date when the stamp holds pyproject.toml's hash (make compares their times)
"%PY%" -c "%HASH%; sys.exit(0 if s.exists() and s.read_text().strip() == h else 3)" pyproject.toml "%STAMP%"
if %errorlevel%==0 exit /b 0
echo [koe] installing torch and the project into %VENV% (the first time takes a while)
"%PY%" -m pip install --progress-bar off --index-url %TORCH_INDEX% "%TORCH%"
if errorlevel 1 exit /b 1
"%PY%" -m pip install --progress-bar off -e ".[all,dev]" "%TORCH%"
if errorlevel 1 exit /b 1
rem style-bert-vits2 pulls pyopenjtalk, which ships the same module as pyopenjtalk-plus:
rem the plus package (bundled dictionary, no download) must be installed last to own it.
"%PY%" -m pip install --progress-bar off --force-reinstall --no-deps "%OPENJTALK%"
if errorlevel 1 exit /b 1
"%PY%" -c "%HASH%; s.write_text(h)" pyproject.toml "%STAMP%"
exit /b 0

rem ---- find_python: the py launcher's 3.11, else a python 3.11 on PATH ----
:find_python
set "PYTHON311="
py -3.11 -c "import sys" >nul 2>&1 && set "PYTHON311=py -3.11"
if defined PYTHON311 exit /b 0
python -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" >nul 2>&1 && set "PYTHON311=python"
if defined PYTHON311 exit /b 0
echo Python 3.11 was not found. Install it from python.org (tick "Add python.exe to PATH"),
echo or with:  winget install Python.Python.3.11
exit /b 1

:fail
echo.
echo [koe] %TARGET% failed (see the messages above)
rem a double-clicked window would close before the error could be read
pause
endlocal
exit /b 1

:end
endlocal
exit /b 0
