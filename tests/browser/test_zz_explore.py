import time, json
import pytest

@pytest.mark.timeout(300)
def test_explore(lab, page, shot):
    page.goto(lab.url("/lab/tree/concurrency.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
    t0=time.monotonic()
    for i in range(40):
        st = page.evaluate("""() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator'); return e ? e.outerHTML.slice(0,300) : null }""")
        ks = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-Toolbar-kernelStatus, .jp-KernelStatus, [data-status]')).map(e=>e.className+' '+e.getAttribute('data-status')).slice(0,5)""")
        print(round(time.monotonic()-t0,1), st, ks)
        if i==5: break
        time.sleep(1)
    shot(page, "opened")
    page.locator("#jp-MainMenu").get_by_role("menuitem", name="Run", exact=True).click()
    shot(page, "runmenu")
    print(page.evaluate("() => Array.from(document.querySelectorAll('.lm-Menu-item')).slice(0,3).map(e=>e.outerHTML.slice(0,300))"))
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    for i in range(40):
        time.sleep(0.7)
        info = page.evaluate("""() => Array.from(document.querySelectorAll('.cxn')).map(e=>[e.dataset.status, e.textContent.length])""")
        print(round(time.monotonic()-t0,1), info)
        if i % 5 == 0: shot(page, f"run{i}")
    shot(page, "end")
    open('/tmp/explore/dom.html','w').write(page.content())
