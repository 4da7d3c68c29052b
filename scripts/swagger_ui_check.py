"""Drives Swagger UI in headless Chromium (scripts/swagger_ui_check.sh starts the server).

Opens /docs, clicks Authorize, logs in through the OAuth2 password flow,
runs GET /users/me with "Try it out" → Execute, and checks that the answer
is a 200 showing the user's e-mail address. Then, on a fresh page (no
Authorize), logs in with the cookie transport (POST /auth/cookie/login,
"Try it out" with the form) and checks that GET /users/me answers 200 with
the cookie the browser kept. Saves a screenshot either way.

Usage: swagger_ui_check.py BASE_URL EMAIL PASSWORD SCREENSHOT
"""

import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

# No Selenium Manager: it would look for drivers and browsers on the internet.
os.environ["SE_OFFLINE"] = "true"

base_url, email, password, screenshot = sys.argv[1:5]
chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

profile = tempfile.mkdtemp(prefix="swagger-ui-check-profile-")
options = webdriver.ChromeOptions()
options.binary_location = chromium
for flag in [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    f"--user-data-dir={profile}",
    "--window-size=1280,1600",
]:
    options.add_argument(flag)

driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
wait = WebDriverWait(driver, 20)


def click(css, by=By.CSS_SELECTOR):
    element = wait.until(ec.element_to_be_clickable((by, css)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()
    return element


def step(text):
    print(f"  - {text}", flush=True)


def execute(operation):
    """Execute (after Try it out) and return (status, description text)."""
    click(f"{operation} button.execute")
    status_css = f"{operation} .live-responses-table tbody .response-col_status"
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, status_css)))
    status = driver.find_element(By.CSS_SELECTOR, status_css).text.strip()
    body = driver.find_element(
        By.CSS_SELECTOR, f"{operation} .live-responses-table tbody .response-col_description"
    ).text
    return status, body


def cookie_login_then_me():
    """POST /auth/cookie/login from the docs page, then GET /users/me with the cookie."""
    step("reload /docs (no Authorize this time)")
    driver.get(f"{base_url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
    step("POST /auth/cookie/login → Try it out → the form → Execute")
    login = "#operations-Auth-auth_cookie_login"
    click(f"{login} .opblock-summary-control")
    click(f"{login} button.try-out__btn")
    for name, value in [("username", email), ("password", password)]:
        field = wait.until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, f"{login} tr[data-property-name='{name}'] input")
            )
        )
        field.clear()
        field.send_keys(value)
    status, body = execute(login)
    step(f"answer {status}")
    if status != "204":
        print(f"cookie login: expected 204, got {status}: {body}", file=sys.stderr)
        return False
    cookies = [c["name"] for c in driver.get_cookies()]
    step(f"the browser keeps the cookies {cookies}")
    step("GET /users/me → Try it out → Execute (the browser sends the cookie)")
    me = "#operations-Users-users_current_user"
    click(f"{me} .opblock-summary-control")
    click(f"{me} button.try-out__btn")
    status, body = execute(me)
    step(f"answer {status}")
    if status != "200" or email not in body:
        print(f"me with the cookie: expected 200 with {email}, got {status}: {body}", file=sys.stderr)
        return False
    step(f"the answer shows {email}")
    return True


ok = False
try:
    step(f"open {base_url}/docs")
    driver.get(f"{base_url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
    title = driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    step(f"Swagger UI shows {title!r}")

    step("Authorize → username and password of the password flow")
    click("button.btn.authorize")
    wait.until(ec.visibility_of_element_located((By.ID, "oauth_username"))).send_keys(email)
    driver.find_element(By.ID, "oauth_password").send_keys(password)
    # The dialog lists the cookie scheme too: the OAuth2 section is the one
    # named after the password flow's scheme.
    oauth2 = "//div[contains(@class,'auth-container')][.//h4[contains(., 'OAuth2PasswordBearer')]]"
    click(f"{oauth2}//div[contains(@class,'auth-btn-wrapper')]//button[contains(@class,'authorize')]", By.XPATH)
    # Logged in: the dialog offers "Logout" instead of "Authorize".
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, f"{oauth2}//button[normalize-space()='Logout']")
        )
    )
    step("authorized")
    click(".auth-container .auth-btn-wrapper button.btn-done")

    step("GET /users/me → Try it out → Execute")
    operation = "#operations-Users-users_current_user"
    click(f"{operation} .opblock-summary-control")
    click(f"{operation} button.try-out__btn")
    click(f"{operation} button.execute")
    status_css = f"{operation} .live-responses-table tbody .response-col_status"
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, status_css)))
    status = driver.find_element(By.CSS_SELECTOR, status_css).text.strip()
    body = driver.find_element(
        By.CSS_SELECTOR, f"{operation} .live-responses-table tbody .response-col_description"
    ).text
    step(f"answer {status}")
    driver.execute_script(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});", operation
    )
    if status != "200":
        print(f"expected 200, got {status}: {body}", file=sys.stderr)
    elif email not in body:
        print(f"the answer does not show {email}: {body}", file=sys.stderr)
    else:
        step(f"the answer shows {email}")
        ok = cookie_login_then_me()
finally:
    driver.save_screenshot(screenshot)
    print(f"  screenshot: {screenshot}")
    driver.quit()

sys.exit(0 if ok else 1)
