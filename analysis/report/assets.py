# SPDX-License-Identifier: GPL-2.0-only
"""The report's stylesheet and its one small script (inline: no CDN, works offline)."""

CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:16px auto;max-width:1240px;padding:0 12px;color:#222}
h1{font-size:1.35em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .4em}
a{color:#1f5fa8} .meta{color:#555;margin:.2em 0 .8em} .none{color:#777;font-style:italic}
table.t{border-collapse:collapse;font-size:12px;margin:.4em 0}
table.t th,table.t td{border:1px solid #ddd;padding:2px 5px;text-align:right;white-space:nowrap}
table.t td:first-child,table.t th:first-child{text-align:left}
table.t th{background:#f3f3f3;position:sticky;top:0}
table.fleet{width:100%;table-layout:auto}
table.fleet td.run{white-space:normal;overflow-wrap:anywhere;min-width:180px;max-width:260px;text-align:left}
table.fleet th.g{text-align:center;background:#e8eef6}
table.fleet thead tr.h th{cursor:pointer;user-select:none;white-space:normal;vertical-align:bottom}
table.fleet th.asc::after{content:" \\25B2"} table.fleet th.desc::after{content:" \\25BC"}
td.bad{color:#b00;font-weight:600} td.warn{color:#a60}
.filter{margin:.4em 0;padding:3px 6px;width:320px;max-width:100%}
.card{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:8px;margin:.6em 0}
.kv{border:1px solid #ddd;border-radius:6px;padding:6px 8px;background:#fafafa}
.kv .k{display:block;color:#555;font-size:12px} .kv .v{display:block;font-size:18px;font-weight:600}
.kv .m{display:block;color:#666;font-size:11px}
.kv.wide{grid-column:span 2}
.bar{display:flex;height:16px;border-radius:3px;overflow:hidden;margin:4px 0;background:#eee}
.bar span{display:block;height:100%}
.legend{font-size:11px;color:#444} .legend i{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px}
.sev-error{color:#b00;font-weight:600} .sev-warning{color:#a60} .sev-info{color:#555}
.panels{display:flex;flex-wrap:wrap;gap:8px} .panels figure{margin:0;max-width:100%}
.panels img{display:block;max-width:100%;height:auto;border:1px solid #eee}
.panels figcaption{max-width:768px;font-size:11px;color:#333}
.panels figcaption span{display:inline-block;margin-right:10px}
.panels figcaption i{display:inline-block;width:12px;height:9px;margin-right:3px;vertical-align:middle}
.panels figcaption i.l{height:3px} .panels figcaption i.d{width:7px;height:7px;border-radius:50%}
details{margin:.3em 0;border:1px solid #e4e4e4;border-radius:4px;padding:.2em .6em;overflow-x:auto}
summary{cursor:pointer;font-weight:600}
"""

#: click a header to sort (numbers by their data-v), type to filter rows
JS = """
(function(){
 var t=document.querySelector('table.fleet'); if(!t) return;
 var body=t.tBodies[0], heads=t.querySelectorAll('thead tr.h th');
 heads.forEach(function(th,i){th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');
  heads.forEach(function(h){h.classList.remove('asc','desc')}); th.classList.add(asc?'asc':'desc');
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){
   var x=a.cells[i].getAttribute('data-v'), y=b.cells[i].getAttribute('data-v');
   var nx=parseFloat(x), ny=parseFloat(y);
   if(x===''&&y!=='') return 1; if(y===''&&x!=='') return -1;
   var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(x<y?-1:x>y?1:0);
   return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r)});});});
 var f=document.querySelector('input.filter'); if(!f) return;
 f.addEventListener('input',function(){var q=f.value.toLowerCase();
  Array.prototype.forEach.call(body.rows,function(r){
   r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});
})();
"""

#: downtime breakdown parts: label, colour (as the plots' phase colours)
BREAKDOWN = (("ram", "RAM", "#4c72b0"), ("vfio", "VFIO", "#c44e52"), ("config", "config", "#dd8452"),
             ("dst_load", "destination load", "#55a868"))


def page(title: str, body: str, script: bool = False) -> str:
    import html

    js = f"<script>{JS}</script>" if script else ""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{body}{js}</body></html>")
